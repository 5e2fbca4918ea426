"""Beyond the paper (chapter 8): other uses of the same data for BABYNAMES, and the runs
that compare them.

The paper tunes on one list: the distinct names of 200 draws from ``p*`` (the SSA
distribution), weighted by their counts. This module builds the alternatives, all with
fixed *held-out* names that no list may contain (their measures are in ``unseen``):

- :func:`p_star_task`: ``p*`` itself (every SSA name of the year, less the held-out ones
  and optionally those under a count threshold), renormalized. Tuned with
  ``targets_per_step=n`` it is a *fresh list* of ``n`` draws at every update;
- :func:`drawn_task`: a fixed list of ``n`` draws from the same ``p*`` (nested sizes);
- :func:`validation_task`, :func:`evaluation_task`: the names a validation stop reads,
  and the fixed evaluation set (a list and the held-out names);
- :func:`remedied_suite`: the six-task suite with its BABYNAMES list replaced;
- :func:`checkpointed_tune`, :func:`load_checkpoint`: a cached run that keeps its
  adapter at every measurement, so a stop chosen afterwards needs no second run;
- :class:`Evaluation`: a row of chapter 8's table for an adapter (exact, sampled, the
  exact knowledge probe), each result cached per adapter.

Example::

    names = data.babynames_task(200)  # chapter 3's list and held-out names
    fresh = p_star_task(names.metadata["held_out"])  # 29,723 names, none held out
    tuned, history = cached_tune(
        "artifacts", model, tok, [fresh], passes=20, lr=5e-4, targets_per_step=200
    )
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import pandas as pd

from . import data
from .adapters import load_adapter, save_adapter
from .artifacts import (
    cached_generations,
    cached_measure,
    cached_tune,
    config_key,
    model_id,
)
from .cache_keys import partial_path, publish
from .diagnostics import TrainingMonitor
from .schedule import tune_settings
from .tasks import BABYNAMES_PROMPT, Task
from .unseen import exact_figures, generation_figures, p_star_share


def ssa_name_counts(year: int | None = None) -> pd.Series:
    """Births per first name in ``year`` (default: the latest), both sexes pooled,
    from most to least common."""
    frame = data._babynames()
    year = data.ssa_latest_year() if year is None else year
    counts = frame[frame["year"] == year].groupby("name")["n"].sum()
    return counts.sort_values(ascending=False, kind="stable").rename("births")


def p_star_task(
    held_out, year: int | None = None, min_count: int | None = None
) -> Task:
    """BABYNAMES whose targets are ``p*`` itself: every SSA name of ``year`` with at
    least ``min_count`` births (None: all), less ``held_out``, weighted by births (so
    ``p*`` renormalized over them). ``metadata['held_out']``: the held-out names.
    Example: ``p_star_task(["Emma"], min_count=10_000).targets[:2]`` -> ``['Liam',
    'Olivia']``."""
    counts = ssa_name_counts(year)
    if min_count is not None:
        counts = counts[counts >= min_count]
    kept = counts[~counts.index.isin(set(held_out))]
    suffix = "" if min_count is None else f"-{min_count}"
    return Task(
        name=f"babynames-p-star{suffix}",
        prompts=[BABYNAMES_PROMPT],
        targets=[str(n) for n in kept.index],
        weights=[float(c) for c in kept.to_numpy()],
        metadata={"year": year, "min_count": min_count, "held_out": list(held_out)},
    )


def drawn_task(held_out, n_draws: int, seed: int = 0, year: int | None = None) -> Task:
    """A fixed list as the paper's: the distinct names of ``n_draws`` draws from ``p*``
    less ``held_out``, weighted by their counts. The draws are the first ``n_draws``
    not held out of ``data.sample_names(p*, ., seed)``, so lists of several sizes are
    nested, and with chapter 3's held-out names the first 200 are chapter 3's draws."""
    distribution, excluded = data.ssa_name_distribution(year), set(held_out)
    size = 2 * n_draws
    while True:
        kept = [
            n for n in data.sample_names(distribution, size, seed) if n not in excluded
        ]
        if len(kept) >= n_draws:
            break
        size *= 2
    counts = Counter(kept[:n_draws])
    names = sorted(counts, key=lambda name: (-counts[name], name))
    return Task(
        name=f"babynames-drawn-{n_draws}",
        prompts=[BABYNAMES_PROMPT],
        targets=names,
        weights=[float(counts[n]) for n in names],
        metadata={"n_draws": n_draws, "seed": seed, "held_out": list(held_out)},
    )


def validation_task(task: Task, seed: int = 0, year: int | None = None) -> Task:
    """Names for a validation stop, apart from the held-out names it would otherwise
    read: as many SSA names as ``task``'s held-out ones, drawn as those were
    (``data.held_out_names``), none among its targets or held-out names. They are the
    targets of a task ``<name>-validation`` weighted by ``p*``, so a monitor of it
    records their exact mass (``exp(-neg_log_mass)``)."""
    distribution = data.ssa_name_distribution(year)
    held_out = task.metadata["held_out"]
    names = data.held_out_names(
        distribution, {*task.targets, *held_out}, len(held_out), seed + 1
    )
    return Task(
        name=f"{task.name}-validation",
        prompts=task.prompts,
        targets=names,
        weights=[float(distribution[n]) for n in names],
        metadata={"role": "validation", "seed": seed},
    )


def evaluation_task(fixed: Task, held_out) -> Task:
    """The fixed evaluation set: the targets of the list ``fixed`` (weighted by its
    counts) and ``held_out``, as the task ``babynames`` whose ``metadata['held_out']``
    the monitor reads for the memorization ratio."""
    return Task(
        name="babynames",
        prompts=fixed.prompts,
        targets=fixed.targets,
        weights=fixed.weights,
        metadata={"held_out": list(held_out)},
    )


def remedied_suite(families, task: Task) -> list:
    """The six-task ``families`` with the BABYNAMES sub-task's targets and weights
    replaced by ``task``'s (its prompts, held-out prompts and metadata kept): a suite
    run then trains on them, drawing ``targets_per_step`` of them at each update as the
    suite's schedule does (fresh draws from ``p*`` when ``task`` is
    :func:`p_star_task`). Other families are returned as they are."""
    return [
        replace(
            family,
            subtasks=[
                replace(t, targets=task.targets, weights=task.weights)
                if t.name == "babynames"
                else t
                for t in family.subtasks
            ],
        )
        for family in families
    ]


@dataclass
class CheckpointMonitor(TrainingMonitor):
    """A :class:`~diffuse_utils.diagnostics.TrainingMonitor` that also saves the adapter
    each time it measures, as ``<checkpoint_dir>/update-<u>`` (after ``u`` updates), so
    a stop chosen afterwards from the run's curves (:func:`validation_stop`) has its
    model without tuning again. ``save_at``: updates measured and saved besides every
    ``every``-th (e.g. where another run stopped, to compare at the same progress)."""

    checkpoint_dir: str = ""
    save_at: tuple = ()

    def due(self, update: int) -> bool:
        return super().due(update) or update in self.save_at

    def measure(self, model, update: int, final: bool = False) -> dict[str, float]:
        path = Path(self.checkpoint_dir) / f"update-{update}"
        if self.checkpoint_dir and not path.exists():
            partial = partial_path(path)
            save_adapter(model, partial)
            publish(partial, path)
        return super().measure(model, update, final)

    def key(self) -> dict:
        return {**super().key(), "checkpoints": True, "save_at": sorted(self.save_at)}


def checkpointed_tune(
    output_dir, model, tokenizer, tasks, settings, monitor, save_at=(), gammas=()
):
    """``cached_tune`` with ``monitor`` (a ``TrainingMonitor``) saving the adapter at
    every measurement and after each update of ``save_at``; ``gammas``: early-stop
    thresholds whose adapters are saved on the way (``also_save_gammas``). Returns
    ``(peft_model, history, folder)``; the adapter after ``u`` updates loads with
    :func:`load_checkpoint` ``(model, folder, u)``."""
    settings = tune_settings(settings)
    key = config_key(
        model=model_id(model), tasks=[t.to_dict() for t in tasks], **asdict(settings)
    )
    folder = Path(output_dir) / "checkpoints" / f"{tasks[0].name[:40]}-{key}"
    own = {f.name: getattr(monitor, f.name) for f in fields(monitor) if f.init}
    own.update(checkpoint_dir=str(folder), save_at=tuple(save_at))
    tuned, history = cached_tune(
        output_dir,
        model,
        tokenizer,
        tasks,
        settings,
        also_save_gammas=gammas,
        monitor=CheckpointMonitor(**own),
        progress=False,
    )
    return tuned, history, folder


def load_checkpoint(model, folder, update: int):
    """The adapter :func:`checkpointed_tune` saved after ``update`` updates, on the
    base ``model``."""
    path = Path(folder) / f"update-{update}"
    if not path.exists():
        saved = sorted(p.name for p in Path(folder).glob("update-*"))
        raise FileNotFoundError(
            f"no checkpoint after {update} updates in {folder}; saved: {saved}. "
            "Checkpoints are saved where the monitor measured (every k updates)."
        )
    return load_adapter(model, path)


@dataclass
class Evaluation:
    """How chapter 8 measures an adapter, each result cached per adapter under
    ``output_dir``: exactly on the evaluation ``task`` (a list and its
    ``metadata['held_out']`` names: :func:`exact_figures`), by sampling ``n_names``
    names under ``sampling`` (a ``SampleSettings``; :func:`generation_figures`, valid
    names read by ``canonical``) and with the exact knowledge probe on ``questions``
    (``utility.knowledge_accuracy``, ``n_choices`` candidates each)."""

    task: Task
    p_star: pd.Series
    canonical: object
    questions: list
    n_choices: int | None
    sampling: object
    n_names: int
    batch_size: int = 100

    @property
    def share_under_p_star(self) -> float:
        held = self.task.metadata["held_out"]
        return p_star_share(self.p_star, self.task.targets, held)

    def row(self, output_dir, model, tokenizer, label, updates, trained=None) -> dict:
        """One row of the chapter's table for ``model``, ``updates`` into its run;
        ``trained``: the targets of a fixed list (the share outside them is the paper's
        measure), ``None`` for fresh lists."""
        from .utility import knowledge_accuracy

        task, seed = self.task, self.sampling.seed
        exact = cached_measure(
            output_dir,
            model,
            "held-out",
            lambda: exact_figures(model, tokenizer, task, self.share_under_p_star),
            task=task.to_dict(),
        )
        (texts,), _ = cached_generations(
            output_dir,
            model,
            tokenizer,
            task.prompts[:1],
            self.n_names,
            self.sampling,
            label="remedies",
            batch_size=self.batch_size,
            progress=False,
        )
        sampled = generation_figures(
            texts,
            self.canonical,
            trained,
            task.metadata["held_out"],
            self.p_star,
            task.prompts[0],
            [*task.targets, *task.metadata["held_out"]],
        )
        knowledge = cached_measure(
            output_dir,
            model,
            "knowledge",
            lambda: knowledge_accuracy(
                model, tokenizer, self.questions, self.n_choices, seed
            )["accuracy"],
            questions=self.questions,
            n_choices=self.n_choices,
            seed=seed,
        )
        return {
            "run": label,
            "updates": updates,
            "fixed_list": trained is not None,
            **exact,
            **sampled,
            "knowledge": knowledge,
        }
