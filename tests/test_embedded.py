"""Integration tests on the embedded SmolLM2-135M-Instruct (about a minute in all on 2 CPU cores)."""
import numpy as np
import pytest
import torch

from diffuse_utils import (RNG_PROMPT, conditional_distribution, encode_task, entropy, sample, target_logprobs, tune,
                           valid_mass)
from diffuse_utils.tuning import load_adapter, save_adapter
from diffuse_utils.scoring import naive_logprobs, shared_prefix_logprobs

pytestmark = pytest.mark.embedded


def test_shared_prefix_scoring_matches_naive(embedded, rng_task):
    """Trie-packed rows (several per pass, padded) give each target's full-sequence log-prob."""
    model, tok = embedded
    encoded = encode_task(tok, rng_task)
    with torch.no_grad():
        naive = naive_logprobs(model, encoded.prompt_ids[0], encoded.target_ids)
        for tokens_per_pass in (40, 1024):
            shared = shared_prefix_logprobs(model, encoded.prompt_ids[0], encoded.target_ids, tokens_per_pass)
            assert (shared - naive).abs().max().item() < 1e-4


def test_baseline_rng_is_biased(embedded, rng_task):
    model, tok = embedded
    logprobs = target_logprobs(model, tok, rng_task)
    conditional = conditional_distribution(logprobs)
    assert entropy(conditional) == pytest.approx(1.95, abs=0.03)
    assert conditional.idxmax() == "1" and valid_mass(logprobs) < 0.001


def test_same_seed_same_samples(embedded):
    model, tok = embedded
    draw = lambda seed: sample(model, tok, RNG_PROMPT, n=6, max_new_tokens=8, seed=seed, progress=False)
    assert draw(5) == draw(5) and draw(5) != draw(6)


def test_tuning_rng_makes_it_diffuse_and_adapter_round_trips(embedded, rng_task, tmp_path):
    model, tok = embedded
    tuned, history = tune(model, tok, [rng_task], passes=40, lr=5e-4, progress=False)
    try:
        logprobs = target_logprobs(tuned, tok, rng_task)
        assert entropy(conditional_distribution(logprobs)) >= 2.25
        assert valid_mass(logprobs) > 0.9
        assert history["loss"].iloc[-1] < history["loss"].iloc[0]
        save_adapter(tuned, tmp_path)
    finally:
        base = tuned.unload()  # give the shared fixture its plain model back
    reloaded = load_adapter(base, tmp_path)
    np.testing.assert_allclose(target_logprobs(reloaded, tok, rng_task), logprobs, atol=1e-5)
    reloaded.unload()
