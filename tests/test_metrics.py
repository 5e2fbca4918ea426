import math

import numpy as np
import pandas as pd
import pytest

from diffuse_utils.metrics import (coverage, empirical_distribution, entropy, kl_divergence, kl_from_samples,
                                   sample_entropy, top_k_table, unigram_diversity)


def test_entropy_hand_values():
    assert entropy([0.5, 0.5]) == pytest.approx(math.log(2))
    assert entropy([1, 1, 1, 1]) == pytest.approx(math.log(4))  # counts are normalized
    assert entropy([0.25, 0.75, 0]) == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    assert entropy([1.0]) == 0.0 and str(entropy([1.0])) == "0.0"
    with pytest.raises(ValueError):
        entropy([0.5, -0.5])


def test_sample_entropy_and_coverage():
    samples = ["a", "b", "a", "a", None, "c"]
    assert coverage(samples) == 3
    assert sample_entropy(samples) == pytest.approx(entropy([3, 1, 1]))
    assert sample_entropy([None]) == 0.0
    dist = empirical_distribution(samples)
    assert list(dist.index) == ["a", "b", "c"] and dist["a"] == pytest.approx(0.6)


def test_kl_hand_values():
    assert kl_divergence([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(5))
    assert kl_divergence([0.2, 0.8], [0.2, 0.8]) == 0.0
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="same length"):
        kl_divergence([1.0], [0.5, 0.5])


def test_kl_from_samples():
    p_star = pd.Series([0.5, 0.5], index=["x", "y"])
    assert kl_from_samples(p_star, ["x", "y", "x", "y", "junk"]) == pytest.approx(0.0)
    assert kl_from_samples(p_star, ["x", "x", "x", "y"]) == pytest.approx(0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2))
    assert kl_from_samples(p_star, ["x"]) == math.inf
    assert kl_from_samples(p_star, ["x"], smoothing=1) == pytest.approx(kl_divergence([0.5, 0.5], [2, 1]))


def test_unigram_diversity_and_top_k():
    assert unigram_diversity(["The cat", "the dog sat"]) == pytest.approx(4 / 5)
    assert unigram_diversity([]) == 0.0
    table = top_k_table(["b", "a", "b", "c", "a", "b", None], k=2)
    assert table.to_dict("list") == {"value": ["b", "a"], "count": [3, 2], "share": [0.5, pytest.approx(1 / 3)]}


def test_multinomial_band_covers_expected_counts():
    from diffuse_utils.metrics import multinomial_band
    band = multinomial_band(pd.Series([0.5, 0.01], index=["a", "b"]), n=1000, seed=1)
    assert band.loc["a", "expected"] == 500 and band.loc["b", "expected"] == 10
    assert 465 <= band.loc["a", "low"] < 500 < band.loc["a", "high"] <= 535  # ~ 500 +- 1.96 * 15.8
    assert band.loc["b", "low"] >= 3 and band.loc["b", "high"] <= 17


def test_proportion_change_is_the_difference_in_points_with_the_two_proportion_error():
    from diffuse_utils.metrics import proportion_change
    change, error = proportion_change(0.5, 0.6, 100)
    assert change == pytest.approx(-10.0) and error == pytest.approx(100 * (0.0025 + 0.0024) ** 0.5)
    changes, errors = proportion_change(np.array([0.6, 1.0]), 0.6, 50)
    assert changes.tolist() == pytest.approx([0.0, 40.0])
    assert errors.tolist() == pytest.approx([100 * (2 * 0.24 / 50) ** 0.5, 100 * (0.24 / 50) ** 0.5])
