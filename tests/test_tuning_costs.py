"""Chapter 6's cost proxies: the changes against the base model and the sentences
quoting them, computed by hand, and the cache key the chapter has always used."""

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from diffuse_utils import tuning_costs
from diffuse_utils.artifacts import cached_measure

ROWS = [  # base, and two adapters over 4 questions
    {
        "model": "base",
        "perplexity": 10.0,
        "QA exact": 0.25,
        "QA named": 0.5,
        "knowledge": 0.5,
        "braced answers": 0.0,
    },
    {
        "model": "tuned: RNG",
        "perplexity": 11.0,
        "QA exact": 0.0,
        "QA named": 0.75,
        "knowledge": 0.5,
        "braced answers": 0.25,
    },
    {
        "model": "tuned: BABYNAMES",
        "perplexity": 9.0,
        "QA exact": 0.25,
        "QA named": 0.0,
        "knowledge": 0.25,
        "braced answers": 1.0,
    },
]


def test_cost_table_changes_against_the_base_model_by_hand():
    cost = tuning_costs.cost_table(ROWS, n_questions=4)
    rng, names = cost.loc["tuned: RNG"], cost.loc["tuned: BABYNAMES"]
    assert rng["perplexity change"] == pytest.approx(0.1)
    assert names["perplexity change"] == pytest.approx(-0.1)
    assert rng["QA exact change (points)"] == pytest.approx(-25)
    assert rng["QA named change (points)"] == pytest.approx(25)
    # 100 sqrt(0.75 * 0.25 / 4 + 0.5 * 0.5 / 4)
    assert rng["QA named change s.e."] == pytest.approx(100 * math.sqrt(0.109375))
    assert names["knowledge change (points)"] == pytest.approx(-25)
    # 100 sqrt(0.25 * 0.75 / 4 + 0.5 * 0.5 / 4)
    assert names["knowledge change s.e."] == pytest.approx(33.0719, abs=1e-4)
    assert cost.loc["base", "QA named change (points)"] == 0


def test_cost_findings_quote_the_largest_greedy_change():
    said = tuning_costs.cost_findings(tuning_costs.cost_table(ROWS, n_questions=4))
    # BABYNAMES: -50 points (s.e. 25) is the largest greedy change, beyond two s.e.
    assert said["qa_change_max_model"] == "tuned: BABYNAMES"
    assert said["qa_change_max"] == pytest.approx(-50)
    assert said["qa_change_max_se"] == pytest.approx(25)
    assert said["qa_changes"] == "RNG +25 (s.e. 33); BABYNAMES -50 (s.e. 25)"
    assert said["qa_beyond_2se"] == 0 and said["n_adapters"] == 2
    assert said["knowledge_changes"] == "RNG +0 (s.e. 35); BABYNAMES -25 (s.e. 33)"
    assert said["knowledge_beyond_2se"] == 0
    assert said["largest_knowledge_change"] == pytest.approx(-25)
    assert said["largest_format_part"] == pytest.approx(-25)  # -50 - (-25)
    assert said["ppl_base"] == 10.0 and said["ppl_change_max"] == pytest.approx(0.1)
    assert (said["qa_base"], said["knowledge_base"]) == (0.5, 0.5)
    assert (said["braced_base"], said["braced_largest"]) == (0.0, 1.0)


def test_measure_is_cached_under_chapter_6s_key(tmp_path, monkeypatch):
    """The key chapter 6 has always used (name "costs", questions as lists, text_chars,
    knowledge_choices, seed): a saved measure keeps being read."""
    fake = dict(
        qa_accuracy=lambda m, t, q: {
            "exact": 0.5,
            "named": 1.0,
            "answers": ["{Paris}", "Rome"],
        },
        knowledge_accuracy=lambda m, t, q, n, seed: {"accuracy": 0.5},
        perplexity=lambda m, t, text: float(len(text)),
        reference_text=lambda n: "x" * n,
        greedy_answers=lambda m, t: ["hi"],
    )
    for name, function in fake.items():
        monkeypatch.setattr(tuning_costs, name, function)
    model = SimpleNamespace(config=SimpleNamespace(_name_or_path="stand-in"))
    questions = [("France", "Paris"), ("Italy", "Rome")]
    costs = tuning_costs.CostProxies(tmp_path, None, questions, 30, 4, seed=1)
    row = costs.measure(model, "base")
    assert row == {
        "model": "base",
        "perplexity": 30.0,
        "QA exact": 0.5,
        "QA named": 1.0,
        "knowledge": 0.5,
        "braced answers": 0.5,
        "greedy": ["hi"],
        "qa_answers": ["{Paris}", "Rome"],
    }
    saved = cached_measure(
        tmp_path,
        model,
        "costs",
        lambda: pytest.fail("not cached"),
        questions=[list(q) for q in questions],
        text_chars=30,
        knowledge_choices=4,
        seed=1,
    )
    assert {"model": "base", **saved} == row
    assert len(list((tmp_path / "measures").glob("costs-*.json"))) == 1
    assert isinstance(tuning_costs.cost_table([row], 2), pd.DataFrame)
