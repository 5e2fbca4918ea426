"""Chapter 3's measurements (single_task): exact and sampled figures of one task, names
read against the tuning targets, Table 1's rows, and the early-stop and learning-rate
rows on a tiny model, which hand the base model back."""

import numpy as np
import pandas as pd
import pytest
from conftest import make_tiny_model

from diffuse_utils import single_task
from diffuse_utils.artifacts import adapter_fingerprint
from diffuse_utils.decoding import SampleSettings
from diffuse_utils.schedule import TuneSettings
from diffuse_utils.tasks import Task, range_task


def test_exact_row_by_hand():
    task = range_task(1, 2)
    logprobs = pd.Series(np.log([0.3, 0.1]), index=["1", "2"])
    row = single_task.exact_row(task, logprobs, ["1", "1", "2", "7", None])
    assert row["exact valid mass"] == pytest.approx(0.4)
    # conditional (0.75, 0.25) against uniform p* = (0.5, 0.5)
    h = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    kl = 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25)
    assert row["exact entropy"] == pytest.approx(h)
    assert row["exact KL(p* || p)"] == pytest.approx(kl)
    assert row["valid_rate"] == pytest.approx(3 / 5)  # 1, 1, 2; 7 is no target
    assert row["coverage_valid"] == 2
    assert row["entropy_valid"] == pytest.approx(np.log(3) - 2 / 3 * np.log(2))
    assert "answers" not in row and "rejected" not in row


def test_names_row_counts_names_outside_the_targets():
    task = Task("names", ["Name a baby, as {name}."], ["Ava", "Mia"])
    answers = ["Ava", "ava", "Zoe", "Liam", "Xyz", None, "name"]
    row = single_task.names_row(answers, ["Ava", "Mia", "Zoe", "Liam"], task)
    assert row["valid_rate"] == pytest.approx(4 / 7)  # Ava, Ava, Zoe, Liam
    assert row["share of valid names outside targets"] == pytest.approx(2 / 4)
    assert row["outside_share"] == row["share of valid names outside targets"]
    assert row["distinct valid names outside targets"] == 2  # Zoe, Liam
    assert row["share of distinct valid names outside targets"] == pytest.approx(2 / 3)
    nothing = single_task.names_row(["Xyz"], ["Ava"], task)
    assert nothing["share of distinct valid names outside targets"] == 0


def test_table1_row_reads_the_summary():
    summary = pd.DataFrame(
        {"entropy_valid": [1.0, 2.0], "coverage_valid": [3, 9]},
        index=["base", "tuned"],
    )
    row = single_task.table1_row("RNG", summary, np.log(10), 10)
    assert row == {
        "task": "RNG",
        "model": "SmolLM2-135M",
        "entropy_baseline": 1.0,
        "entropy_tuned": 2.0,
        "coverage_baseline": 3,
        "coverage_tuned": 9,
        "entropy_natural": np.log(10),
        "coverage_natural": 10,
    }


def test_bench_rows_tune_once_and_hand_the_base_model_back(tmp_path, tokenizer):
    model = make_tiny_model(len(tokenizer))
    sampling = SampleSettings(max_new_tokens=3)
    bench = single_task.TaskBench(tmp_path, model, tokenizer, 3, sampling, batch_size=4)
    task = Task("names", ["Name a baby."], ["Ada", "Bo"], metadata={"held_out": ["Cy"]})
    answers = bench.draw(model, "base", task.prompts[0])
    assert len(answers) == 3 and bench.draw(model, "x", task.prompts[0]) == answers
    settings = TuneSettings(passes=2, lora_rank=2)
    row = bench.gamma_row(task, settings, 0.2, ["Ada", "Bo", "Cy"])
    assert adapter_fingerprint(model) == "base"
    assert row["gamma"] == 0.2 and row["updates"] == 2 and row["n"] == 3
    rate = bench.rate_row(task, settings, 1e-3, 0.2)
    assert adapter_fingerprint(model) == "base"
    assert rate["task"] == "names" and rate["updates"] == 2
    assert not rate["stopped early"] and 0 < rate["valid mass"] < 1
    assert rate["memorization"] > 0  # the task has held-out names
    again = bench.rate_row(task, settings, 1e-3, 0.2)  # read back from the cache
    assert again["KL"] == pytest.approx(rate["KL"]) and again["updates"] == 2
