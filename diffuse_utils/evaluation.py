"""Evaluating a model on task families, and the leave-one-out experiment of Section 5.

Each sub-task is evaluated on its *held-out* phrasings: ``n_samples`` generations per
prompt, read as every chapter reads answers (``answers``: braces, the family's valid
answers), plus the exact distribution over the targets where they are enumerable.
Figures are per prompt; the paper reports their mean over a task's prompts.

Example::

    suite = load_suite(["numbers", "fruits"])
    frame = evaluate_family(
        model, tokenizer, suite[0], label="base", output_dir="artifacts", n_samples=100
    )
    frame.groupby("family")[["entropy_valid", "coverage_valid", "valid_rate"]].mean()
"""

from __future__ import annotations

import pandas as pd

from .answers import text_figures
from .artifacts import cached_generations, cached_tune
from .decoding import SampleSettings, sample_settings
from .scoring import score_prompts
from .suite import TaskFamily, held_out_task


def evaluate_family(
    model,
    tokenizer,
    family: TaskFamily,
    label: str,
    output_dir,
    n_samples: int = 100,
    settings: SampleSettings | None = None,
    *,
    batch_size: int = 100,
    progress: bool = True,
    **overrides,
) -> pd.DataFrame:
    """One row per (sub-task, held-out prompt): the figures of its ``n_samples``
    generations under ``settings`` with ``overrides`` (``answers.answer_figures``,
    against the family's valid answers), their ``sample_seconds`` and, for enumerable
    sub-tasks, the exact ``exact_entropy``, ``exact_kl`` (uniform ``p*`` vs the model's
    distribution renormalized over targets) and ``valid_mass``. Generations are cached
    (``artifacts.cached_generations``); batch_size changes the speed only."""
    return evaluate_suite(
        model,
        tokenizer,
        [family],
        label,
        output_dir,
        n_samples,
        settings,
        batch_size=batch_size,
        progress=progress,
        **overrides,
    ).drop(columns="run")


def evaluate_suite(
    model,
    tokenizer,
    families: list[TaskFamily],
    label: str,
    output_dir,
    n_samples: int = 100,
    settings: SampleSettings | None = None,
    *,
    batch_size: int = 100,
    progress: bool = True,
    **overrides,
) -> pd.DataFrame:
    """:func:`evaluate_family`'s rows for each family, stacked, with a ``run`` column
    set to ``label``. The held-out prompts of every family are drawn in one sampler call
    (rows of several prompts share a batch: fewer, fuller decoding steps)."""
    settings = sample_settings(settings, **overrides)
    prompts = [held_out_prompts(family) for family in families]
    drawn, seconds = cached_generations(
        output_dir,
        model,
        tokenizer,
        [prompt for family in prompts for _, _, prompt in family],
        n_samples,
        settings,
        label=label,
        batch_size=batch_size,
        progress=progress,
    )
    texts, spent = iter(drawn), iter(seconds)
    rows = []
    for family, family_prompts in zip(families, prompts):
        scores = {
            task.name: score_prompts(model, tokenizer, held_out_task(task))
            for task in family.subtasks
            if task.metadata.get("enumerable")
        }
        for where in family_prompts:
            rows.append(_prompt_row(family, where, next(texts), next(spent), scores))
    return pd.DataFrame(rows).assign(run=label)


def _prompt_row(family, where, texts, seconds, scores) -> dict:
    """The row of one held-out prompt (``where``: its ``(sub-task, index, prompt)``;
    ``scores``: the exact scores of the family's enumerable sub-tasks, by name)."""
    task, index, prompt = where
    row = {
        "family": family.name,
        "subtask": task.name,
        "prompt": index,
        **text_figures(texts, family.checker(task.name), task.targets, prompt),
        "sample_seconds": seconds,
    }
    if task.name in scores:
        exact = scores[task.name].loc[index]
        row.update(
            exact_entropy=exact["entropy"],
            exact_kl=exact["kl"],
            valid_mass=exact["valid_mass"],
        )
    return row


def held_out_prompts(family: TaskFamily) -> list[tuple]:
    """``(sub-task, index, prompt)`` for every held-out phrasing of ``family``, in
    order: what :func:`evaluate_family` evaluates."""
    return [
        (task, index, prompt)
        for task in family.subtasks
        for index, prompt in enumerate(task.metadata["held_out_prompts"])
    ]


def training_tasks(families: list[TaskFamily]) -> list:
    """Every sub-task of ``families``, with its training prompts: what tuning sees."""
    return [task for family in families for task in family.subtasks]


def leave_one_out_plan(families: list[TaskFamily]) -> dict[str, list[TaskFamily]]:
    """Runs of Section 5: ``'ID'`` tunes on every family, ``'OOD-<name>'`` on all but
    ``<name>``."""
    if len(families) < 2:
        raise ValueError(
            "leave-one-out needs at least two task families; "
            f"got {[f.name for f in families]}"
        )
    plan = {"ID": list(families)}
    plan.update(
        {
            f"OOD-{held.name}": [f for f in families if f is not held]
            for held in families
        }
    )
    return plan


def suite_adapter(
    output_dir,
    model,
    tokenizer,
    families: list[TaskFamily],
    settings=None,
    progress: bool = True,
    **overrides,
):
    """The adapter tuned on ``families`` with ``settings`` (a
    :class:`~diffuse_utils.tuning.TuneSettings`, default the release's, with
    ``overrides``): loaded if one with the same configuration is saved under
    ``output_dir``, else tuned and saved. Notebook 04 makes its ID and OOD adapters this
    way; notebooks 05 and 06 reuse the ID one."""
    return cached_tune(
        output_dir,
        model,
        tokenizer,
        training_tasks(families),
        settings,
        progress=progress,
        **overrides,
    )
