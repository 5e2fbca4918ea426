import pytest
import torch

from diffuse_utils import sample
from diffuse_utils.decoding import decode_answer, halting_ids
from diffuse_utils.answers import parse_braces
from diffuse_utils.sampling import warp_logits

from conftest import make_tiny_gemma2


@pytest.mark.parametrize("text, expected", [
    ("{7}", "7"), ("Sure! { Olivia }.", "Olivia"), ("{a} then {b}", "a"), ("no braces", None),
    ("{}", ""), ("{unclosed", None), ("{{x}}", "x"),
])
def test_parse_braces(text, expected):
    assert parse_braces(text) == expected


def test_same_seed_same_samples(tiny_model, tokenizer):
    kwargs = dict(n=7, max_new_tokens=5, batch_size=3, progress=False)
    first = sample(tiny_model, tokenizer, "Pick.", seed=1, **kwargs)
    assert first == sample(tiny_model, tokenizer, "Pick.", seed=1, **kwargs)
    assert len(first) == 7
    assert first != sample(tiny_model, tokenizer, "Pick.", seed=2, **kwargs)


def test_a_sample_depends_on_neither_the_batch_size_nor_how_many_are_drawn(tiny_model, tokenizer):
    kwargs = dict(max_new_tokens=5, seed=1, progress=False)
    seven = sample(tiny_model, tokenizer, "Pick.", n=7, batch_size=3, **kwargs)
    assert sample(tiny_model, tokenizer, "Pick.", n=7, batch_size=7, **kwargs) == seven
    assert sample(tiny_model, tokenizer, "Pick.", n=4, batch_size=2, **kwargs) == seven[:4]


def test_batch_size_does_not_change_greedy_output(tiny_model, tokenizer):
    greedy = [sample(tiny_model, tokenizer, "Pick.", n=4, temperature=0, max_new_tokens=6, batch_size=b,
                     progress=False) for b in (1, 4)]
    assert greedy[0] == greedy[1] and len(set(greedy[0])) == 1


def test_greedy_matches_generate(tiny_model, tokenizer):
    from diffuse_utils import encode_prompt
    ids = torch.tensor([encode_prompt(tokenizer, "Pick.")])
    reference = tiny_model.generate(ids, max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0)
    expected = tokenizer.decode(reference[0, ids.shape[1]:], skip_special_tokens=True)
    assert sample(tiny_model, tokenizer, "Pick.", n=1, temperature=0, max_new_tokens=6, progress=False) == [expected]


def test_response_prefix_is_kept(tiny_model, tokenizer):
    texts = sample(tiny_model, tokenizer, "Pick.", n=3, max_new_tokens=2, response_prefix="{", progress=False)
    assert all(t.startswith("{") for t in texts)


def test_warp_logits():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda x: torch.isfinite(x)[0].tolist()
    assert kept(warp_logits(logits, top_p=0.7)) == [True, True, False, False]
    assert kept(warp_logits(logits, top_p=0.5)) == [True, False, False, False]
    assert kept(warp_logits(logits, min_p=0.3)) == [True, True, True, False]  # 0.15 >= 0.3 * 0.5
    torch.testing.assert_close(warp_logits(logits, temperature=2.0), logits / 2)


def test_bad_arguments(tiny_model, tokenizer):
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        sample(tiny_model, tokenizer, "p", n=1, temperature=-1)
    with pytest.raises(ValueError, match="must be >= 1"):
        sample(tiny_model, tokenizer, "p", n=0)


def test_decode_cuts_at_stop_and_keeps_other_special_tokens(tokenizer):
    brace_one = tokenizer("{1}", add_special_tokens=False)["input_ids"]
    end_of_text = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert decode_answer(tokenizer, brace_one + [2, 5, 6], {2}) == "{1}"
    assert decode_answer(tokenizer, brace_one + [end_of_text], {2}) == "{1}<|endoftext|>"


def test_braced_spans_lists_every_brace():
    from diffuse_utils.answers import braced_spans
    assert braced_spans("like this: {name}. Or {n}, not {{}}") == ["name", "n", ""]
    assert braced_spans("no braces") == []


def test_rows_that_stop_leave_the_batch_without_disturbing_the_others(tiny_model, tokenizer, monkeypatch):
    """Rows start with different tokens and row 1 stops at its second token; the next-token logits
    every other row sees must be those of its own history run alone (the right cache rows were kept)."""
    from diffuse_utils import encode_prompt
    from diffuse_utils.encoding import end_of_turn_ids
    from diffuse_utils import sampling
    stop = end_of_turn_ids(tokenizer)[0]
    seen = []

    def choose(logits, warp, uniforms):
        seen.append(logits.clone())
        if len(seen) == 1:
            return torch.tensor([101, 150, 202, 303])
        return torch.where(torch.arange(len(logits)) == 1, stop, logits.argmax(-1)) if len(seen) == 2 \
            else logits.argmax(-1)

    monkeypatch.setattr(sampling, "_next_tokens", choose)
    prompt = encode_prompt(tokenizer, "Pick.")
    last, kv = sampling.prompt_state(tiny_model, prompt)
    rows = sampling._generate_batch(tiny_model, [(last, kv)], [0] * 4, torch.tensor([stop]),
                                    sampling.SampleSettings(max_new_tokens=4), torch.rand(4, 4, dtype=torch.float64))
    assert rows[1] == [150, stop] and [len(x) for x in seen] == [4, 4, 3, 3]
    for position, row in enumerate((0, 3, 2)):  # the last row moved into the place of the one that stopped
        assert len(rows[row]) == 4
        with torch.no_grad():
            alone = tiny_model(input_ids=torch.tensor([prompt + rows[row]])).logits[0, len(prompt) + 1:-1]
        torch.testing.assert_close(torch.stack([step[position] for step in seen[2:]]), alone.float(),
                                   rtol=1e-4, atol=1e-4)


def test_draw_tokens_follows_the_probabilities_and_never_draws_a_zero():
    from diffuse_utils.sampling import draw_tokens
    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2]]).expand(40000, -1)
    uniforms = torch.rand(40000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    counts = torch.bincount(draw_tokens(probs, uniforms), minlength=4).double() / 40000
    assert counts[1] == 0
    torch.testing.assert_close(counts, torch.tensor([0.5, 0.0, 0.3, 0.2], dtype=torch.float64), atol=0.01, rtol=0)
    assert torch.equal(draw_tokens(probs * 7, uniforms), draw_tokens(probs, uniforms))  # only the ratios matter
    # sums exact in float32: the cumulative sums are 0.5, 0.5, 0.75, 1.0; u = 0.5 falls past token 0
    # and skips the empty token 1, whether the vocabulary is one block or several
    dyadic = torch.tensor([[0.5, 0.0, 0.25, 0.25]]).expand(6, -1)
    edges = torch.tensor([0.0, 0.4999, 0.5, 0.7499, 0.75, 0.9999], dtype=torch.float64)
    for block in (1024, 2, 1):
        assert draw_tokens(dyadic, edges, block=block).tolist() == [0, 0, 2, 2, 3, 3]


def test_draw_tokens_in_blocks_matches_one_float64_cumulative_sum():
    """The block search draws what a full float64 cumulative sum draws (up to float32 rounding of
    the block totals, about 1e-7 of the total: no difference expected in 3,000 draws)."""
    from diffuse_utils.sampling import draw_tokens
    generator = torch.Generator().manual_seed(1)
    probs = torch.randn(3000, 1000, generator=generator).mul(3).softmax(-1)
    probs[:, 200:300] = 0                                   # an empty stretch, over whole blocks of 8
    uniforms = torch.rand(3000, generator=generator, dtype=torch.float64)
    cumulative = probs.double().cumsum(-1)
    reference = torch.searchsorted(cumulative, uniforms[:, None] * cumulative[:, -1:], right=True)[:, 0]
    for block in (8, 64, 1024):   # 1000 is not a multiple of 64: the last block is padded with zeros
        drawn = draw_tokens(probs, uniforms, block=block)
        assert torch.equal(drawn, reference)
        assert not ((drawn >= 200) & (drawn < 300)).any()


def test_preallocated_cache_refuses_to_grow_past_its_room(tiny_model, tokenizer):
    from diffuse_utils import encode_prompt
    from diffuse_utils import sampling
    _, kv = sampling.prompt_state(tiny_model, encode_prompt(tokenizer, "Pick."))
    cache, mask = sampling.preallocated_cache(tiny_model, [kv], [0, 0], new_tokens=1)
    assert mask.tolist() == [[1] * (kv[0][0].shape[-2] + 1)] * 2
    layer = cache.layers[0]
    step = torch.zeros(2, *kv[0][0].shape[1:2], 1, kv[0][0].shape[-1])
    keys, _ = layer.update(step, step)
    assert keys.shape[-2] == kv[0][0].shape[-2] + 1 and torch.equal(keys[0, :, :-1], kv[0][0][0])
    with pytest.raises(RuntimeError, match="holds .* positions"):
        layer.update(step, step)


def test_prompts_sampled_together_match_each_sampled_alone(tiny_model, tokenizer):
    from diffuse_utils.sampling import sample_prompts
    prompts = ["Pick.", "Pick a letter from the alphabet, any letter at all.", "Go"]
    settings = dict(max_new_tokens=6, seed=4, progress=False)
    alone = [sample(tiny_model, tokenizer, prompt, n=n, **settings) for prompt, n in zip(prompts, (5, 3, 4))]
    for batch_size in (4, 12):        # batches of 4 mix prompts at their boundaries; 12 holds them all
        together = sample_prompts(tiny_model, tokenizer, prompts, [5, 3, 4], batch_size=batch_size, **settings)
        assert together == alone
    with pytest.raises(ValueError, match="one count per prompt: 3 prompts, 2 counts"):
        sample_prompts(tiny_model, tokenizer, prompts, [5, 3])


def test_a_sliding_window_model_samples_one_prompt_per_batch(tokenizer, monkeypatch):
    from diffuse_utils import encode_prompt, kvcache, sampling
    model = make_tiny_gemma2(len(tokenizer), sliding_window=16)
    assert not kvcache.mixes_prompts(model)
    settings = dict(max_new_tokens=4, seed=1, progress=False)
    together = sampling.sample_prompts(model, tokenizer, ["Pick.", "Pick a letter."], [3, 3], batch_size=4, **settings)
    assert together == [sample(model, tokenizer, p, n=3, **settings) for p in ("Pick.", "Pick a letter.")]
    # a prompt longer than the window: each step's logits are those of the whole sequence run again
    prompt = encode_prompt(tokenizer, "Pick a letter.")
    assert len(prompt) > 16
    seen = []
    real_next_tokens = sampling._next_tokens

    def record(logits, *args):
        seen.append(logits[0].clone())
        return real_next_tokens(logits, *args)
    monkeypatch.setattr(sampling, "_next_tokens", record)
    greedy = sample(model, tokenizer, "Pick a letter.", n=1, temperature=0, max_new_tokens=4, progress=False)[0]
    ids = list(prompt)
    with torch.no_grad():
        for step in range(4):
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
            torch.testing.assert_close(seen[step].log_softmax(-1), logits.log_softmax(-1), rtol=1e-4, atol=1e-4)
            ids.append(int(logits.argmax()))
    assert greedy == decode_answer(tokenizer, ids[len(prompt):], halting_ids(tokenizer, "cpu")[0])


def test_greedy_completions_match_one_prompt_at_a_time(tiny_model, tokenizer):
    from diffuse_utils.greedy import greedy_completions
    prompts = ["Pick.", "Pick a number, any number at all, between one and ten.", "Say hi."]  # different lengths
    alone = [sample(tiny_model, tokenizer, p, n=1, temperature=0, max_new_tokens=6, progress=False)[0]
             for p in prompts]
    assert greedy_completions(tiny_model, tokenizer, prompts, max_new_tokens=6, batch_size=3) == alone
    assert greedy_completions(tiny_model, tokenizer, prompts, max_new_tokens=6, batch_size=2) == alone
    with pytest.raises(ValueError, match="batch_size and max_new_tokens must be >= 1"):
        greedy_completions(tiny_model, tokenizer, prompts, batch_size=0)


def test_sample_settings_validate_key_and_refuse_unknown_names():
    from diffuse_utils.decoding import SampleSettings, sample_settings
    assert SampleSettings().key() == {"seed": 0, "max_new_tokens": 16}
    hot = sample_settings(temperature=2.0, min_p=0.1, seed=3)
    assert hot.key() == {"seed": 3, "max_new_tokens": 16, "temperature": 2.0, "min_p": 0.1}
    assert sample_settings(hot, temperature=1.0).key() == {"seed": 3, "max_new_tokens": 16, "min_p": 0.1}
    assert hot.warp == {"temperature": 2.0, "top_p": 1.0, "min_p": 0.1}
    for bad, message in ((dict(max_new_tokens=0), "max_new_tokens must be a positive integer"),
                         (dict(temperature=-1), "temperature must be >= 0"), (dict(top_p=0), "top_p must be in"),
                         (dict(min_p=2), "min_p must be in"), (dict(closing_fields=-1), "closing_fields must be")):
        with pytest.raises(ValueError, match=message):
            SampleSettings(**bad)
    with pytest.raises(ValueError, match=r"unknown sampling settings \['batch'\].*batch_size and progress"):
        sample_settings(batch=3)
    with pytest.raises(ValueError, match="unknown sampling settings"):
        sample(None, None, "Pick.", n=2, max_tokens=3)
