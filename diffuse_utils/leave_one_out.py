"""Chapter 4's tables: the six task families, and the leave-one-out runs' results read
per task and setting.

The runs themselves are :func:`~diffuse_utils.evaluation.leave_one_out_plan`,
:func:`~diffuse_utils.evaluation.suite_adapter` and
:func:`~diffuse_utils.evaluation.evaluate_suite`; their rows (one per held-out prompt)
carry a ``setting`` column, ``"baseline"``, ``"OOD"`` or ``"ID"``, read here:

- :func:`overview`, :func:`subtask_examples`: what the families hold;
- :func:`loss_per_pass`: a run's summed loss per pass against its minimum;
- :func:`setting_means`, :func:`setting_tables`, :func:`family_figures`: the means per
  task and setting (Figure 3, Tables 5 and 6), and each as a named figure for the text;
- :func:`beside_paper`: ours beside the paper's Tables 5 and 6;
- :func:`top_answers`: what each setting says most often, and what was rejected;
- :func:`time_table`: the two clocks, when computed and this execution.

Example::

    means = setting_means(results, suite)
    tables = setting_tables(means)
    tables["entropy"]  # a row per task, columns baseline, OOD, ID
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import top_k_table
from .report import paper_tables_5_6
from .suite import FAMILY_NAMES

SETTINGS = ("baseline", "OOD", "ID")  # the base model, tuned without the task, with it
RATIO = "L / sum H(p*)"  # a pass's summed loss over its minimum, the summed entropy
MEANS = ["entropy_valid", "coverage_valid", "valid_rate", "entropy_parsed"]
# the tables of setting_tables: their names, and the column of each
TABLES = {
    "entropy": "entropy_valid",
    "coverage": "coverage_valid",
    "valid rate": "valid_rate",
}


def overview(suite) -> pd.DataFrame:
    """A row per family (indexed by its title): sub-tasks, training and held-out
    prompts, targets and valid answers (summed over its sub-tasks), and its source.
    Example: ``overview(load_suite(["numbers"])).loc["NUMBERS", "sub-tasks"]``."""
    rows = [
        {
            "task": family.title,
            "sub-tasks": len(family.subtasks),
            "training prompts": sum(len(t.prompts) for t in family.subtasks),
            "held-out prompts": sum(
                len(t.metadata["held_out_prompts"]) for t in family.subtasks
            ),
            "targets": sum(len(t.targets) for t in family.subtasks),
            "valid answers": sum(
                len(family.valid_answers(t.name)) for t in family.subtasks
            ),
            "source": family.source,
        }
        for family in suite
    ]
    return pd.DataFrame(rows).set_index("task")


def subtask_examples(suite, targets: int = 4) -> pd.DataFrame:
    """A row per family: its last sub-task's name, first training prompt, first
    held-out prompt and first ``targets`` targets.
    Example: ``subtask_examples(suite)["held-out prompt"]``."""
    rows = []
    for family in suite:
        task = family.subtasks[-1]
        rows.append(
            {
                "sub-task": task.name,
                "training prompt": task.prompts[0],
                "held-out prompt": task.metadata["held_out_prompts"][0],
                "some targets": ", ".join(task.targets[:targets]),
            }
        )
    return pd.DataFrame(rows)


def loss_per_pass(history: pd.DataFrame) -> pd.DataFrame:
    """A row per pass of a tuning ``history``: ``loss`` and ``optimal_loss`` summed over
    the rows that have a loss, and their ratio :data:`RATIO` (1: a perfect match).
    Example: losses 3 and 1 against minima 1 and 1 in pass 1 give a ratio of 2."""
    per_pass = (
        history.dropna(subset=["loss"])
        .groupby("pass")[["loss", "optimal_loss"]]
        .sum()
        .reset_index()
    )
    per_pass[RATIO] = per_pass["loss"] / per_pass["optimal_loss"]
    return per_pass


def setting_means(results: pd.DataFrame, suite) -> pd.DataFrame:
    """The mean of each of :data:`MEANS` over a family's held-out prompts, a row per
    (family, setting), with the family's title as ``task``, ordered by
    :data:`SETTINGS` (a categorical ``setting``).
    Example: two prompts of NUMBERS at entropies 1 and 2 under OOD give a row of 1.5."""
    titles = {f.name: f.title for f in suite}
    means = (
        results.groupby(["family", "setting"], sort=False)[MEANS].mean().reset_index()
    )
    means["task"] = means["family"].map(titles)
    means["setting"] = pd.Categorical(means["setting"], list(SETTINGS))
    return means.sort_values(["setting"], kind="stable")


def setting_tables(means: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``{"entropy": ..., "coverage": ..., "valid rate": ...}``: each a row per task
    and a column per setting, from :func:`setting_means`.
    Example: ``pd.concat(setting_tables(means), axis=1).round(2)``."""
    return {
        name: means.pivot(index="task", columns="setting", values=column)[
            list(SETTINGS)
        ]
        for name, column in TABLES.items()
    }


def family_figures(tables: dict[str, pd.DataFrame], suite) -> dict[str, float]:
    """Every figure of :func:`setting_tables` named for the text,
    ``"<entropy|coverage|valid>_<family>_<setting>"``, for each of the book's six
    families (NaN for one not in ``suite``).
    Example: ``family_figures(tables, suite)["entropy_fruits_OOD"]``."""
    titles = {f.name: f.title for f in suite}
    keys = {"entropy": "entropy", "coverage": "coverage", "valid": "valid rate"}
    return {
        f"{key}_{name}_{setting}": tables[table].loc[titles[name], setting]
        if name in titles
        else np.nan
        for name in FAMILY_NAMES
        for setting in SETTINGS
        for key, table in keys.items()
    }


def beside_paper(
    tables: dict[str, pd.DataFrame], model: str = "Llama-2-13B-chat"
) -> pd.DataFrame:
    """Our coverage and entropy per task and setting (``ours: ...``) beside the
    paper's baseline and OOD columns for ``model`` (``paper: ...``, quoted from
    :func:`~diffuse_utils.report.paper_tables_5_6`), a row per (metric, task).
    Example: ``beside_paper(tables).loc[("entropy", "FRUITS"), "paper: OOD"]`` is
    3.28."""
    paper = paper_tables_5_6()
    quoted = paper[paper["model"] == model].pivot(
        index="task", columns="metric", values=["baseline", "OOD"]
    )
    sides = {}
    for metric in ("coverage", "entropy"):
        ours = tables[metric][list(SETTINGS)].add_prefix("ours: ")
        theirs = quoted.xs(metric, axis=1, level="metric").add_prefix("paper: ")
        sides[metric] = ours.join(theirs)
    return pd.concat(sides, names=["metric", "task"])


def top_answers(results: pd.DataFrame, suite, k: int = 5) -> pd.DataFrame:
    """A row per family title: the ``k`` commonest valid answers of each setting,
    pooled over the family's held-out prompts, as ``"answer (count)"``, and the ``k``
    answers the ID run's evaluation rejected most often.
    Example: answers ``["a", "b", "a"]`` under OOD read ``"a (2), b (1)"``."""

    def listed(rows, column) -> str:
        pooled = [a for answers in rows[column] for a in answers]
        top = top_k_table(pooled, k=k)
        return ", ".join(f"{v} ({c})" for v, c in zip(top["value"], top["count"]))

    examples = {}
    for family in suite:
        rows = results[results["family"] == family.name]
        for setting in SETTINGS:
            examples[(family.title, setting)] = listed(
                rows[rows["setting"] == setting], "answers"
            )
        examples[(family.title, "rejected (ID)")] = listed(
            rows[rows["setting"] == "ID"], "rejected"
        )
    return pd.Series(examples).unstack()[[*SETTINGS, "rejected (ID)"]]


def time_table(histories: dict, results: pd.DataFrame, timings: dict) -> pd.DataFrame:
    """Seconds per part of the chapter on two clocks: ``when computed`` (each run's
    ``tune_seconds`` and the summed ``sample_seconds`` of its rows, NaN where one is
    missing, as saved with the adapters and generations) and ``this execution``
    (``timings``, the wall times now), rounded to 0.1 s.
    Example: a run "ID" tuned in 60 s reads 60.0 in row "tune ID"."""
    computed = {
        f"tune {run}": history.attrs.get("tune_seconds")
        for run, history in histories.items()
    }
    computed.update(
        {
            f"evaluate {run}": frame["sample_seconds"].sum(min_count=len(frame))
            for run, frame in results.groupby("run", sort=False)
        }
    )
    return pd.DataFrame(
        {
            "when computed (s)": pd.Series(computed, dtype=float),
            "this execution (s)": pd.Series(timings, dtype=float),
        }
    ).round(1)
