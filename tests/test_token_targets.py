import pytest
import torch

from diffuse_utils.encoding import encode_task
from diffuse_utils.packing import packed_logprobs
from diffuse_utils.tries import Query
from diffuse_utils.token_targets import gradient_vector, path_mean_weights, per_token_loss, token_targets

from conftest import make_tiny_model


def test_targets_of_a_small_trie_by_hand():
    soft = token_targets([7, 8], [[1, 2], [1, 3, 2], [4, 2]], [0.25, 0.25, 0.5])
    by_prefix = {tuple(soft.target_ids[j][:k]): (reach, dict(zip(tokens, probs)))
                 for (j, k), reach, tokens, probs in zip(soft.where, soft.reach, soft.tokens, soft.probs)}
    assert by_prefix.keys() == {(), (1,), (1, 3), (4,)}
    assert by_prefix[()] == (pytest.approx(1.0), pytest.approx({1: 0.5, 4: 0.5}))
    assert by_prefix[(1,)] == (pytest.approx(0.5), pytest.approx({2: 0.5, 3: 0.5}))
    assert by_prefix[(1, 3)] == (pytest.approx(0.25), pytest.approx({2: 1.0}))
    assert by_prefix[(4,)] == (pytest.approx(0.5), pytest.approx({2: 1.0}))
    weights = dict(zip(map(tuple, [soft.target_ids[j][:k] for j, k in soft.where]), path_mean_weights(soft, [1, 1, 2])))
    assert weights[()] == pytest.approx(0.25 / 2 + 0.25 / 3 + 0.5 / 2)
    assert weights[(1, 3)] == pytest.approx(0.25 / 3)


def test_zero_mass_targets_add_no_nodes_and_bad_weights_are_refused():
    soft = token_targets([7], [[1, 2], [5, 6, 2]], [1.0, 0.0])
    assert len(soft.nodes) == 2 and soft.reach.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="one weight per target"):
        token_targets([7], [[1], [2]], [1.0])
    with pytest.raises(ValueError, match="non-negative"):
        token_targets([7], [[1], [2]], [1.0, -0.5])
    with pytest.raises(ValueError, match="at least one token"):
        token_targets([7], [[1], []], [0.5, 0.5])
    with pytest.raises(ValueError, match="one entry per node"):
        per_token_loss(make_tiny_model(16), soft, weights=[1.0])


def _sequence_loss_by_hand(model, prompt_ids, target_ids, p_star):
    """Eq. 5 from one plain forward pass per target (no trie, no padding)."""
    total = 0.0
    for target, weight in zip(target_ids, p_star):
        ids = torch.tensor([prompt_ids + target])
        logprobs = model(input_ids=ids).logits[0, len(prompt_ids) - 1:-1].float().log_softmax(-1)
        total = total - weight * logprobs.gather(-1, torch.tensor(target)[:, None]).sum()
    return total


def test_per_token_loss_and_gradient_equal_eq5(tokenizer, small_task):
    model = make_tiny_model(len(tokenizer))
    for p in model.parameters():
        p.requires_grad_(True)
    encoded = encode_task(tokenizer, small_task)
    prompt, p_star = encoded.prompt_ids[0], small_task.probabilities
    soft = token_targets(prompt, encoded.target_ids, p_star)
    per_token = per_token_loss(model, soft)
    sequence = _sequence_loss_by_hand(model, prompt, encoded.target_ids, p_star)
    packed = -(torch.tensor(p_star, dtype=torch.float32) * packed_logprobs(model, [Query(prompt, encoded.target_ids)])[0]).sum()
    assert per_token.item() == pytest.approx(sequence.item(), rel=1e-5)
    assert packed.item() == pytest.approx(sequence.item(), rel=1e-5)
    g_token, g_sequence = gradient_vector(model, per_token), gradient_vector(model, sequence)
    assert g_sequence.norm() > 0
    assert ((g_token - g_sequence).norm() / g_sequence.norm()).item() < 1e-5
    other = per_token_loss(model, soft, weights=path_mean_weights(soft, p_star))
    assert abs(other.item() - sequence.item()) > 1e-3  # another weighting is another objective
