"""Chapter 6's comparison: how many generations each probe gets, which adapter answers
it, the call each method makes, and the failure table, against hand-built cases."""

import numpy as np
import pandas as pd
from conftest import make_tiny_model

from diffuse_utils import method_comparison
from diffuse_utils.adapters import add_lora
from diffuse_utils.artifacts import adapter_fingerprint
from diffuse_utils.baselines import Method, Probe


def _probe(task, name):
    return Probe(task, name, f"prompt of {name}", str, ["a", "b"], True)


PROBES = [_probe("RNG", "rng"), _probe("BABYNAMES", "names"), _probe("COUNTRIES", "eu")]


def test_counts_and_groups_follow_the_probes_task():
    compare = method_comparison.Comparison(
        "out", None, None, n_samples=60, suite_samples=10
    )
    assert compare.counts(PROBES) == [60, 60, 10]
    assert [method_comparison.tuned_group(p) for p in PROBES] == [
        "RNG",
        "BABYNAMES",
        "six tasks (ID)",
    ]


def test_run_samples_every_probe_with_its_count(monkeypatch):
    calls = []

    def compare_probes(output_dir, model, tokenizer, probes, method, counts, **speed):
        calls.append((output_dir, model, tokenizer, probes, method, counts, speed))
        return [{"probe": p.name} for p in probes]

    monkeypatch.setattr(method_comparison, "compare_probes", compare_probes)
    compare = method_comparison.Comparison(
        "out", "base", "tok", 8, 2, batch_size=5, tokens_per_pass=64
    )
    method = Method.decoding("temperature 1")
    assert compare.run("tuned", method, PROBES[1:]) == [
        {"probe": "names"},
        {"probe": "eu"},
    ]
    assert calls == [
        (
            "out",
            "tuned",
            "tok",
            PROBES[1:],
            method,
            [8, 2],
            {"batch_size": 5, "tokens_per_pass": 64},
        )
    ]


def test_adapter_tunes_on_the_base_model_and_hands_it_back(monkeypatch, tokenizer):
    model, asked = make_tiny_model(len(tokenizer)), []

    def cached_tune(output_dir, base, tok, tasks, settings, tokens_per_pass=None):
        asked.append((output_dir, base is model, tasks, settings, tokens_per_pass))
        return add_lora(base, lora_rank=2), None

    monkeypatch.setattr(method_comparison, "cached_tune", cached_tune)
    compare = method_comparison.Comparison(
        "out", model, tokenizer, 8, 2, tokens_per_pass=64
    )
    with compare.adapter(["task"], "settings") as tuned:
        assert adapter_fingerprint(tuned) != "base"
    assert adapter_fingerprint(model) == "base"
    assert asked == [("out", True, ["task"], "settings", 64)]


def test_failure_rates_average_each_methods_failures_per_task():
    comparison = pd.DataFrame(
        {
            "method": ["Verbalized Sampling"] * 3
            + ["String Seed of Thought"] * 3
            + ["tuned"],
            "task": ["RNG", "RNG", "COUNTRIES", "RNG", "COUNTRIES", "COUNTRIES", "RNG"],
            "list_failure": [0.5, 1.0, 0.0, np.nan, np.nan, np.nan, np.nan],
            "seed_failure": [np.nan] * 3 + [0.25, 0.5, 1.0, np.nan],
        }
    )
    failed = method_comparison.failure_rates(comparison)
    assert list(failed.index) == ["RNG", "COUNTRIES"]
    assert failed["Verbalized Sampling: no list"].tolist() == [0.75, 0.0]
    assert failed["String Seed of Thought: no string and answer"].tolist() == [
        0.25,
        0.75,
    ]


def test_best_alternative_names_one_method_or_the_tie_and_tells_small_rates_apart():
    def means(entropies, rates):
        index = ["tuned"] + [f"m{k}" for k in range(len(entropies))]
        return pd.DataFrame({"entropy_valid": [2.0, *entropies], "valid_rate": [0.6, *rates]}, index=index)

    one = method_comparison.best_alternative(means([0.03, 0.0], [0.0039, 0.2]))
    assert one["method"] == "m0" and one["entropy"] == 0.03 and one["valid"] == 0.0039
    assert one["sentence"] == ("The alternative with the highest entropy, m0, reaches 0.03 nats "
                               "at a valid rate of 0.004.")
    zero = method_comparison.best_alternative(means([0.0, 0.0, 0.0], [0.0, 0.0043, 0.002]))
    assert zero["method"] == "all 3, tied" and zero["valid_text"] == "0.000 to 0.004"
    assert zero["sentence"] == ("No alternative gives two different valid answers to one probe: "
                                "all 3 score 0 nats, at valid rates of 0.000 to 0.004.")
    tie = method_comparison.best_alternative(means([0.5, 0.5, 0.1], [0.3, 0.31, 0.9]))
    assert tie["method"] == "m0; m1" and tie["valid"] == 0.31 and tie["valid_text"] == "0.30 to 0.31"
    assert tie["sentence"].startswith("No alternative stands out: 2 of 3 tie at the highest entropy, 0.50")
