"""Chapter 4's tables (diffuse_utils.leave_one_out), on results written by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from diffuse_utils import leave_one_out
from diffuse_utils.suite import TaskFamily
from diffuse_utils.tasks import Task


def family(name, title, subtasks):
    return TaskFamily(name=name, title=title, subtasks=subtasks, source="by hand")


@pytest.fixture
def suite():
    pick = Task(
        "pick",
        ["Pick a fruit."],
        ["apple", "pear"],
        metadata={
            "held_out_prompts": ["A fruit?", "Any fruit?"],
            "valid_answers": ["apple", "pear", "plum"],
        },
    )
    berry = Task(
        "berry",
        ["Pick a berry."],
        ["fig", "kiwi"],
        metadata={"held_out_prompts": ["A berry?"]},
    )
    digit = Task(
        "digit", ["Pick 1 or 2."], ["1", "2"], metadata={"held_out_prompts": ["1/2?"]}
    )
    return [
        family("fruits", "FRUITS", [pick, berry]),
        family("numbers", "NUMBERS", [digit]),
    ]


def results_by_hand():
    """Two held-out prompts of FRUITS and one of NUMBERS under each setting."""
    rows = []
    for setting, entropy in (("baseline", 0.5), ("OOD", 1.0), ("ID", 2.0)):
        run = "ID" if setting == "ID" else f"{setting}-numbers"
        run = "baseline" if setting == "baseline" else run
        for fam, e, answers in (
            ("fruits", entropy, ["apple", "apple"]),
            ("fruits", entropy + 1, ["pear"]),
            ("numbers", entropy / 2, ["1"]),
        ):
            rows.append(
                dict(
                    family=fam,
                    setting=setting,
                    run=run,
                    entropy_valid=e,
                    coverage_valid=len(set(answers)),
                    valid_rate=0.5,
                    entropy_parsed=e,
                    answers=answers,
                    rejected=["junk"] if setting == "ID" else [],
                    sample_seconds=2.0,
                )
            )
    return pd.DataFrame(rows)


def test_overview_counts_each_familys_subtasks_prompts_and_answers(suite):
    table = leave_one_out.overview(suite)
    fruits = table.loc["FRUITS"]
    assert fruits["sub-tasks"] == 2 and fruits["training prompts"] == 2
    assert fruits["held-out prompts"] == 3 and fruits["targets"] == 4
    assert fruits["valid answers"] == 5  # apple, pear, plum + fig, kiwi
    assert fruits["source"] == "by hand"
    assert list(table.index) == ["FRUITS", "NUMBERS"]


def test_subtask_examples_show_each_familys_last_subtask(suite):
    table = leave_one_out.subtask_examples(suite)
    assert table.loc[0].tolist() == ["berry", "Pick a berry.", "A berry?", "fig, kiwi"]
    assert table.loc[1, "sub-task"] == "digit"


def test_loss_per_pass_sums_the_rows_with_a_loss():
    history = pd.DataFrame(
        {
            "pass": [1, 1, 2, 2],
            "loss": [3.0, np.nan, 2.0, 1.0],
            "optimal_loss": [1.0, 5.0, 1.0, 1.0],
        }
    )
    per_pass = leave_one_out.loss_per_pass(history)
    assert per_pass["pass"].tolist() == [1, 2]
    assert per_pass["optimal_loss"].tolist() == [1.0, 2.0]  # the NaN row left out
    assert per_pass[leave_one_out.RATIO].tolist() == [3.0, 1.5]


def test_setting_means_and_tables_read_each_task_under_each_setting(suite):
    means = leave_one_out.setting_means(results_by_hand(), suite)
    assert means["setting"].tolist()[:2] == ["baseline", "baseline"]
    tables = leave_one_out.setting_tables(means)
    assert list(tables) == ["entropy", "coverage", "valid rate"]
    entropy = tables["entropy"]
    assert list(entropy.columns) == ["baseline", "OOD", "ID"]
    assert entropy.loc["FRUITS"].tolist() == [1.0, 1.5, 2.5]  # (e + e + 1) / 2
    assert entropy.loc["NUMBERS"].tolist() == [0.25, 0.5, 1.0]
    assert tables["coverage"].loc["FRUITS", "OOD"] == 1.0


def test_family_figures_name_every_figure_and_nan_for_a_family_left_out(suite):
    tables = leave_one_out.setting_tables(
        leave_one_out.setting_means(results_by_hand(), suite)
    )
    figures = leave_one_out.family_figures(tables, suite)
    assert len(figures) == 6 * 3 * 3  # six families, three settings, three tables
    assert figures["entropy_fruits_OOD"] == 1.5
    assert figures["valid_numbers_ID"] == 0.5
    assert figures["coverage_fruits_baseline"] == 1.0
    assert math.isnan(figures["entropy_babynames_ID"])
    assert list(figures)[:3] == [
        "entropy_babynames_baseline",
        "coverage_babynames_baseline",
        "valid_babynames_baseline",
    ]


def test_beside_paper_puts_the_quoted_columns_beside_ours(suite):
    tables = leave_one_out.setting_tables(
        leave_one_out.setting_means(results_by_hand(), suite)
    )
    side = leave_one_out.beside_paper(tables)
    fruits = side.loc[("entropy", "FRUITS")]
    assert fruits["ours: OOD"] == 1.5
    assert (fruits["paper: baseline"], fruits["paper: OOD"]) == (2.33, 3.28)
    assert side.loc[("coverage", "FRUITS"), "paper: baseline"] == 45.0
    assert side.index.names == ["metric", "task"]


def test_top_answers_pool_a_familys_prompts_per_setting(suite):
    table = leave_one_out.top_answers(results_by_hand(), suite, k=5)
    assert table.loc["FRUITS", "OOD"] == "apple (2), pear (1)"
    assert table.loc["NUMBERS", "ID"] == "1 (1)"
    assert table.loc["FRUITS", "rejected (ID)"] == "junk (2)"
    assert list(table.columns) == ["baseline", "OOD", "ID", "rejected (ID)"]


def test_time_table_reads_both_clocks():
    history = pd.DataFrame({"loss": [1.0]})
    history.attrs["tune_seconds"] = 61.24
    unsaved = pd.DataFrame({"loss": [1.0]})  # a history without its seconds
    results = pd.DataFrame(
        {"run": ["ID", "ID", "baseline"], "sample_seconds": [1.0, 2.0, np.nan]}
    )
    timings = {"tune ID": 0.04, "evaluate ID": 0.5, "total": 9.0}
    table = leave_one_out.time_table(
        {"ID": history, "OOD-x": unsaved}, results, timings
    )
    assert table.loc["tune ID"].tolist() == [61.2, 0.0]
    assert table.loc["evaluate ID", "when computed (s)"] == 3.0
    assert math.isnan(table.loc["evaluate baseline", "when computed (s)"])
    assert math.isnan(table.loc["tune OOD-x", "when computed (s)"])
    assert table.loc["total", "this execution (s)"] == 9.0
