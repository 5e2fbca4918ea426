"""The trie that scores every target once per distinct prefix, and how it is cut into rows and passes."""
import pytest
import torch

from diffuse_utils import encode_task
from diffuse_utils.packing import packed_logprobs
from diffuse_utils.tries import Query, Trie, pack_rows, passes_tokens, plan_cost, plan_passes, trie_size
from diffuse_utils.scoring import naive_logprobs

from conftest import make_tiny_gemma2


def test_trie_nodes_parents_and_paths_by_hand():
    trie = Trie()
    trie.add([5, 1, 2], scored_from=1)   # prompt [5], target [1, 2]
    trie.add([5, 1, 3, 4], scored_from=1)
    assert trie.tokens == [5, 1, 3] and trie.depths == [0, 1, 2] and trie.parents == [-1, 0, 1]
    assert trie.paths == [[0, 1], [0, 1, 2]]  # [5] predicts 1; [5, 1] predicts 2 or 3; [5, 1, 3] predicts 4
    assert trie.ancestors().tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert trie_size([[5, 1, 2], [5, 1, 3, 4]]) == 3


def test_rows_hold_every_target_once_within_width(tokenizer, small_task):
    encoded = encode_task(tokenizer, small_task)
    queries = [Query(prompt, encoded.target_ids) for prompt in encoded.prompt_ids]
    for width in (25, 40, 1000):
        rows = pack_rows(queries, width)
        members = [m for row in rows for m in row.members]
        assert sorted(members) == [(q, j) for q in range(2) for j in range(5)]
        longest = max(len(p) + len(t) - 1 for p in encoded.prompt_ids for t in encoded.target_ids)
        assert all(len(row.trie) <= max(width, longest) for row in rows)
    # one row: the prompts' shared chat template is run once, so fewer tokens than the prompts alone
    one_row = pack_rows(queries, 1000)
    assert len(one_row) == 1
    assert len(one_row[0].trie) == trie_size([p + t for p in encoded.prompt_ids for t in encoded.target_ids])
    assert len(one_row[0].trie) < sum(map(len, encoded.prompt_ids)) + sum(map(len, encoded.target_ids))
    passes = plan_passes(queries, row_width=40, tokens_per_pass=80)
    assert passes_tokens(passes) >= sum(len(row.trie) for rows in passes for row in rows)
    assert all(len(rows) * max(len(r.trie) for r in rows) <= 80 or len(rows) == 1 for rows in passes)


def test_plan_cost_by_hand():
    # 300, 200 and 100 nodes fit one pass of 1024 tokens as 3 rows padded to 300: 900 tokens,
    # each attending over 300 positions at 300 / 1000 of its matmul cost.
    assert plan_cost([100, 300, 200], tokens_per_pass=1024, break_even=1000) == pytest.approx(900 * 1.3)
    # 600 + 500 do not fit 1024 together: two passes of one row each.
    assert plan_cost([500, 600], tokens_per_pass=1024, break_even=1000) == pytest.approx(600 * 1.6 + 500 * 1.5)


def test_a_long_prompt_is_run_once_not_once_per_row():
    prompt = list(range(100, 300))                    # 200 tokens, like the biography prompt
    queries = [Query(prompt, [[1, k, 2] for k in range(10)])]
    rows = pack_rows(queries)
    assert len(rows) == 1 and len(rows[0].trie) == 200 + 1 + 10  # prompt, "1", then one node per k
    narrow = plan_passes(queries, row_width=50)       # every sequence is wider: one row each, prompt repeated
    assert passes_tokens(narrow) == 10 * 202


def test_rows_are_split_where_nothing_is_shared_and_attention_costs():
    queries = [Query(list(range(1, 50)), [[7]]), Query(list(range(101, 150)), [[7]])]
    assert [len(row.trie) for row in pack_rows(queries, break_even=10)] == [49, 49]
    shared = [Query(list(range(1, 50)), [[7], [8], [9]])]
    assert [len(row.trie) for row in pack_rows(shared, break_even=10)] == [49]


def test_packed_scoring_of_several_prompts_equals_naive(tiny_model, tokenizer, small_task):
    encoded = encode_task(tokenizer, small_task)
    queries = [Query(prompt, encoded.target_ids[k:]) for k, prompt in enumerate(encoded.prompt_ids)]
    with torch.no_grad():
        for row_width, tokens_per_pass in ((20, 45), (256, 1024)):
            scores = packed_logprobs(tiny_model, queries, row_width, tokens_per_pass)
            for query, score in zip(queries, scores):
                torch.testing.assert_close(score, naive_logprobs(tiny_model, query.prompt_ids, query.target_ids),
                                           atol=1e-5, rtol=0)


def test_soft_capped_head_is_applied_as_the_model_does(tokenizer, small_task):
    """Gemma-2 caps its logits in forward(); the packed path runs the head itself and must do the same."""
    model = make_tiny_gemma2(len(tokenizer), final_logit_softcapping=0.5)
    encoded = encode_task(tokenizer, small_task)
    with torch.no_grad():
        packed = packed_logprobs(model, [Query(encoded.prompt_ids[0], encoded.target_ids)])[0]
        naive = naive_logprobs(model, encoded.prompt_ids[0], encoded.target_ids)
    torch.testing.assert_close(packed, naive, atol=1e-5, rtol=0)


def test_bad_pass_sizes_and_empty_targets_are_refused():
    with pytest.raises(ValueError, match="tokens_per_pass must be a positive integer"):
        plan_passes([Query([1, 2], [[3]])], tokens_per_pass=0)
    with pytest.raises(ValueError, match="queries \\[0\\] have no targets or an empty target"):
        plan_passes([Query([1, 2], [[3], []])])
