"""Chapter 1's measurements (diffuse_utils.bias) against cases computed by hand."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
from conftest import make_tiny_model

from diffuse_utils import SampleSettings, Task, bias
from diffuse_utils.artifacts import cached_generations
from diffuse_utils.scoring import target_logprobs

matplotlib.use("Agg")


def test_draws_read_and_write_the_cache_the_plain_call_uses(tokenizer, tmp_path):
    model = make_tiny_model(len(tokenizer))
    draws = bias.Draws(tmp_path, model, tokenizer, SampleSettings(max_new_tokens=2))
    drawn = draws("Pick.", 3, response_prefix="{")
    assert len(drawn.texts) == 3 and drawn.seconds >= 0
    texts, _ = drawn
    (plain,), _ = cached_generations(
        tmp_path,
        model,
        tokenizer,
        ["Pick."],
        3,
        label="base",
        seed=0,
        max_new_tokens=2,
        temperature=1.0,
        response_prefix="{",
        progress=False,
    )
    assert plain == texts
    files = list((tmp_path / "generations").iterdir())
    assert len(files) == 1 and files[0].name.startswith("base-")


def test_agreement_band_counts_by_hand():
    probabilities = pd.Series({"a": 0.5, "b": 0.25})  # 0.25 left: "other"
    band = bias.agreement_band(probabilities, ["a", "b", "a", None], seed=0)
    assert band.index.tolist() == ["a", "b", "any valid"]
    assert band["observed"].tolist() == [2, 1, 3]
    assert band["expected"].tolist() == [2.0, 1.0, 3.0]
    assert (
        band["inside"].tolist()
        == band["observed"].between(band["low"], band["high"]).tolist()
    )
    assert bias.band_summary(band) == {
        "answers inside the 95% band": f"{band['inside'].iloc[:2].sum()} / 2",
        "valid total inside its band": bool(band["inside"].iloc[2]),
    }


def test_crossing_text_in_its_three_cases():
    def sweep(entropies):
        temperatures = [0.5, 1.0, 5.0, 20.0][: len(entropies)]
        return pd.DataFrame({"temperature": temperatures, bias.ENTROPY: entropies})

    # 0.99 ln 10 = 2.2795...
    assert bias.crossing_text(sweep([1.0, 2.0, 2.28]), 9, 10) == "at temperature 5"
    assert bias.crossing_text(sweep([1.0, 2.0, 2.2, 2.25]), 9, 10) == (
        "at no temperature tried (up to 20), and never in the limit"
    )
    assert bias.crossing_text(sweep([1.0, 2.0, 2.2, 2.25]), 10, 10) == (
        "at no temperature tried (up to 20)"
    )


def test_table1_baselines_puts_our_rows_before_the_papers_by_task():
    figures = pd.DataFrame(
        {"entropy_valid": [1.0, 2.0], "coverage_valid": [3, 4], "valid_rate": [0.5, 1]},
        index=["none", "'{'"],
    )
    with_natural = pd.concat(
        [
            figures,
            pd.DataFrame(
                {"entropy_valid": [6.0], "coverage_valid": [90]}, index=["natural (x)"]
            ),
        ]
    )
    naturals = {
        "RNG": (
            "natural (uniform)",
            {"entropy_valid": np.log(10), "coverage_valid": 10},
        ),
        "BABYNAMES": ("natural (SSA)", with_natural.iloc[-1]),
    }
    table = bias.table1_baselines(
        {"RNG": figures, "BABYNAMES": with_natural}, naturals, model="M"
    )
    ours = table[table["source"] == "this notebook"]
    assert ours["model"].tolist() == [
        "M, prefix none",
        "M, prefix '{'",
        "natural (SSA)",
        "M, prefix none",
        "M, prefix '{'",
        "natural (uniform)",
    ]
    assert ours["task"].tolist() == ["BABYNAMES"] * 3 + ["RNG"] * 3
    assert table["task"].tolist() == ["BABYNAMES"] * 6 + ["RNG"] * 6  # 3 quoted each
    assert ours["coverage_baseline"].tolist() == [3, 4, 90, 3, 4, 10]
    assert np.isnan(ours["valid_rate"].iloc[2]) and ours["valid_rate"].iloc[1] == 1
    assert table.index.tolist() == list(range(12))


def test_base_finding_in_words():
    base = {
        "top p": 0.3,
        "top answer": "1",
        "entropy (nats)": 2.5,
        "entropy / ln |T|": 0.8,
        "KL(uniform || model)": 0.4567,
    }
    chat = {"entropy / ln |T|": 0.5}
    sampled = {"valid_rate": 0.25, "n": 200, "coverage_valid": 12}
    assert bias.base_finding("gemma", base, chat, sampled, 20) == (
        "gemma puts 30% of its valid mass on 1 (uniform: 5%); its entropy is 2.50 "
        "nats, 80% of ln 20, a KL of 0.457 nats from uniform, closer to uniform than "
        "the chat model on the RNG prompt. Sampled, 25% of 200 completions are a "
        "valid answer, with 12 of the 20 seen"
    )
    further = bias.base_finding("g", base, {"entropy / ln |T|": 0.9}, sampled, 20)
    assert "further from uniform" in further


def test_exact_row_and_sweep_on_a_tiny_model(tokenizer, tmp_path):
    model = make_tiny_model(len(tokenizer))
    task = Task("rng", ["Pick."], ["1", "2", "3"])
    probs = np.exp(target_logprobs(model, tokenizer, task))
    dist, row = bias.exact_row(model, tokenizer, task)
    assert dist.to_numpy() == pytest.approx(probs.to_numpy() / probs.sum())
    assert row["valid mass"] == pytest.approx(probs.sum())
    entropy = -(dist * np.log(dist)).sum()
    assert row["entropy / ln |T|"] == pytest.approx(entropy / np.log(3))
    assert row["top answer"] == dist.idxmax() and row["top p"] == dist.max()
    draws = bias.Draws(tmp_path, model, tokenizer, SampleSettings(max_new_tokens=2))
    sweep = bias.temperature_sweep(draws, task, [1, 5], n=3)
    assert sweep["temperature"].tolist() == [1, 5]
    assert sweep.loc[0, "exact valid mass"] == pytest.approx(probs.sum())
    assert sweep.loc[0, bias.ENTROPY] == pytest.approx(entropy)
    assert len(list((tmp_path / "generations").iterdir())) == 2


def test_show_samples_draws_a_figure(tokenizer):
    model = make_tiny_model(len(tokenizer))
    tasks = {"RNG": ("Pick.", ["1", "2"])}
    figure = bias.show_samples(
        model, tokenizer, tasks, SampleSettings(max_new_tokens=2), 4
    )
    assert "RNG at T=1.0:" in figure.axes[0].get_title()
    assert figure.axes[0].get_title().endswith("/4 valid")
