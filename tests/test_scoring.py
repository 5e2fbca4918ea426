import numpy as np
import pandas as pd
import pytest
import torch

from diffuse_utils import conditional_distribution, encode_task, target_logprobs, valid_mass
from diffuse_utils.scoring import naive_logprobs, shared_prefix_logprobs


@pytest.mark.parametrize("tokens_per_pass", [1, 30, 1024])
def test_shared_prefix_equals_naive(tiny_model, tokenizer, small_task, tokens_per_pass):
    """From one target per pass to all in one row, the packed trie gives the full-sequence log-probs."""
    encoded = encode_task(tokenizer, small_task)
    with torch.no_grad():
        for prompt in encoded.prompt_ids:
            shared = shared_prefix_logprobs(tiny_model, prompt, encoded.target_ids, tokens_per_pass)
            naive = naive_logprobs(tiny_model, prompt, encoded.target_ids)
            torch.testing.assert_close(shared, naive, atol=1e-5, rtol=0)


def test_target_logprobs_series(tiny_model, tokenizer, small_task):
    logprobs = target_logprobs(tiny_model, tokenizer, small_task, prompt_index=1)
    assert list(logprobs.index) == small_task.targets and logprobs.name == "logprob"
    assert (logprobs < 0).all()
    conditional = conditional_distribution(logprobs)
    assert conditional.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(conditional, np.exp(logprobs) / np.exp(logprobs).sum())
    assert 0 < valid_mass(logprobs) < 1


def test_valid_mass_and_conditional_hand_values():
    logprobs = pd.Series(np.log([0.1, 0.3]), index=["a", "b"])
    assert valid_mass(logprobs) == pytest.approx(0.4)
    np.testing.assert_allclose(conditional_distribution(logprobs), [0.25, 0.75])


def test_temperature_scoring_equals_naive_and_flattens(tiny_model, tokenizer, small_task):
    encoded = encode_task(tokenizer, small_task)
    with torch.no_grad():
        hot = shared_prefix_logprobs(tiny_model, encoded.prompt_ids[0], encoded.target_ids, 2, temperature=3.0)
        torch.testing.assert_close(hot, naive_logprobs(tiny_model, encoded.prompt_ids[0], encoded.target_ids, 3.0),
                                   atol=1e-5, rtol=0)
    from diffuse_utils import entropy
    cold = target_logprobs(tiny_model, tokenizer, small_task, temperature=0.3)
    warm = target_logprobs(tiny_model, tokenizer, small_task, temperature=3.0)
    assert entropy(conditional_distribution(warm)) > entropy(conditional_distribution(cold))


def test_score_prompts_matches_per_prompt_scoring(tiny_model, tokenizer, small_task):
    from diffuse_utils import entropy, kl_divergence, score_prompts
    table = score_prompts(tiny_model, tokenizer, small_task)
    assert list(table.index) == [0, 1]
    conditional = conditional_distribution(target_logprobs(tiny_model, tokenizer, small_task, prompt_index=1))
    assert table.loc[1, "entropy"] == pytest.approx(entropy(conditional))
    assert table.loc[1, "kl"] == pytest.approx(kl_divergence(small_task.probabilities, conditional))


def test_top_p_and_min_p_scoring_equal_naive_and_the_greedy_limit(tiny_model, tokenizer, small_task):
    """Scoring under a filter is the sampler's distribution: with min_p = 1 only the greedy path survives."""
    encoded = encode_task(tokenizer, small_task)
    prompt = encoded.prompt_ids[0]
    with torch.no_grad():
        for warp in ({"top_p": 0.5}, {"min_p": 0.05, "temperature": 2.0}):
            shared = shared_prefix_logprobs(tiny_model, prompt, encoded.target_ids, 2, **warp)
            torch.testing.assert_close(shared, naive_logprobs(tiny_model, prompt, encoded.target_ids, **warp),
                                       atol=1e-5, rtol=0)
        greedy = []
        for _ in range(3):
            greedy.append(int(tiny_model(input_ids=torch.tensor([prompt + greedy])).logits[0, -1].argmax()))
        other = greedy[:2] + [(greedy[2] + 1) % len(tokenizer)]
        scores = shared_prefix_logprobs(tiny_model, prompt, [greedy, other], 2, min_p=1.0)
    assert scores[0].item() == pytest.approx(0.0, abs=1e-6)
    assert scores[1].item() == float("-inf")
