"""Chapter 7's tuning runs: BABYNAMES at several learning rates and ranks, and the six
tasks on two schedules at several learning rates, one family left out; every adapter
cached, every measurement through a :class:`~diffuse_utils.ablation.Bench`.

- :class:`NameProbe`, :func:`name_figures`: names drawn from an adapter and read against
  the tuning targets (the share outside them);
- :func:`names_runs`: BABYNAMES tuned at each (lr, rank) until an early stop, measured
  at that threshold and at a looser one it passed on its way;
- :func:`diagnostic_curves`, :func:`memorization_at`, :func:`common_memorization`: the
  runs' exact diagnostics, and their memorization ratios compared at one loss;
- :func:`schedule`, :func:`schedule_runs`: the six-task runs, their exact entropy on
  the trained (ID) and left-out (OOD) families and their utility.

Example::

    probe = NameProbe(names_task, check, 300, SampleSettings())
    table, histories = names_runs(bench, probe, [(5e-4, 4)], TuneSettings(), (0.2, 0.5))
    memorization_at(diagnostic_curves(histories, "babynames")["lr 0.0005, r 4"], 1.5)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .ablation import Bench, crossing_update
from .adapters import adapter
from .answers import text_figures
from .artifacts import cached_generations, cached_measure, cached_tune
from .decoding import SampleSettings
from .diagnostics import TrainingMonitor, terms
from .evaluation import suite_adapter
from .schedule import TuneSettings, tune_settings
from .scoring import score_prompts
from .suite import held_out_task
from .tasks import Task


def name_figures(texts: list[str], check, targets, prompt: str = "") -> dict:
    """Valid rate, entropy and coverage of the valid names among ``texts`` (``check``: a
    name's canonical form or ``None``, or the valid names; the prompt's braced
    placeholders are not names), and the share outside ``targets``, of the valid
    generations and of the distinct valid names."""
    figures = text_figures(texts, check, set(targets), prompt)
    distinct = set(figures["answers"])
    return {
        "valid_rate": figures["valid_rate"],
        "entropy_valid": figures["entropy_valid"],
        "coverage_valid": figures["coverage_valid"],
        "outside (generations)": figures["outside_share"],
        "outside (distinct)": len(distinct - set(targets)) / max(len(distinct), 1),
    }


@dataclass(frozen=True)
class NameProbe:
    """``n`` names drawn from ``task``'s first prompt under ``settings`` (cached), read
    by :func:`name_figures` with ``check`` against the task's targets."""

    task: Task
    check: object
    n: int
    settings: SampleSettings

    def measure(self, bench: Bench, model, label: str) -> dict:
        prompt = self.task.prompts[0]
        (texts,), _ = cached_generations(
            bench.output_dir,
            model,
            bench.tokenizer,
            [prompt],
            self.n,
            self.settings,
            label=label,
            batch_size=bench.batch_size,
        )
        return name_figures(texts, self.check, self.task.targets, prompt)


def names_runs(
    bench: Bench, names: NameProbe, runs, settings: TuneSettings, gammas, every: int = 1
):
    """Tune ``names.task`` at each ``(lr, rank)`` of ``runs`` until the loss is within
    ``gammas[0]`` of its minimum (cached; ``settings`` gives the rest), keeping the
    adapter each run has when it first passes each looser threshold of ``gammas[1:]``.

    Returns ``(table, histories)``: one row per run and threshold (``run``, ``lr``,
    ``rank``, ``gamma``, ``updates``, ``stopped``: whether it reached that threshold,
    :func:`name_figures`, :meth:`Bench.changes`), and each run's history with the exact
    diagnostics every ``every`` updates, keyed ``"lr 0.0005, r 4"``. A run that never
    reaches a threshold keeps its last adapter there."""
    monitor = TrainingMonitor(
        bench.tokenizer,
        [names.task],
        every=every,
        utility=bench.probe,
        tokens_per_pass=bench.tokens_per_pass,
    )
    rows, histories = [], {}
    for lr, rank in runs:
        run = tune_settings(settings, lr=lr, lora_rank=rank, early_stop_gamma=gammas[0])
        tuned, history = _tune(bench, names.task, run, monitor, list(gammas[1:]))
        tuned.unload()  # only its history: each threshold's adapter is loaded below
        histories[f"lr {lr:g}, r {rank}"] = history
        for gamma in gammas:
            tuned, at = _tune(bench, names.task, replace(run, early_stop_gamma=gamma))
            with adapter(tuned):
                rows.append(
                    {
                        "run": f"lr {lr:g}, r {rank}, gamma {gamma:g}",
                        "lr": lr,
                        "rank": rank,
                        "gamma": gamma,
                        "updates": int(at["stepped"].sum()),
                        "stopped": crossing_update(history, gamma) is not None,
                        **names.measure(bench, tuned, "ablation"),
                        **bench.changes(tuned),
                    }
                )
    return pd.DataFrame(rows), histories


def _tune(bench: Bench, task: Task, settings: TuneSettings, monitor=None, also=()):
    return cached_tune(
        bench.output_dir,
        bench.model,
        bench.tokenizer,
        [task],
        settings,
        also_save_gammas=also,
        monitor=monitor,
        tokens_per_pass=bench.tokens_per_pass,
    )


def diagnostic_curves(histories: dict, task: str) -> dict[str, pd.DataFrame]:
    """Each history's exact diagnostics of ``task`` against updates: ``update``,
    ``L / H(p*)``, ``-log M``, ``KL(p* || q_T)`` and ``memorization``."""
    curves = {}
    for label, history in histories.items():
        curve = terms(history, task)
        curves[label] = pd.DataFrame(
            {
                "update": curve["update"],
                "L / H(p*)": curve["L"] / curve["H"],
                "-log M": curve["neg_log_mass"],
                "KL(p* || q_T)": curve["KL"],
                "memorization": curve["memorization"],
            }
        )
    return curves


def memorization_at(curve: pd.DataFrame, level: float) -> float:
    """The memorization ratio where ``L / H(p*)`` first falls to ``level``, interpolated
    linearly between the two measurements around it; NaN if it never does. Example: a
    curve at ratios 3, 2, 1 with memorization 0.3, 0.2, 0.1 gives 0.15 at level 1.5."""
    ratio = curve["L / H(p*)"].to_numpy()
    memorization = curve["memorization"].to_numpy()
    below = np.nonzero(ratio <= level)[0]
    if len(below) == 0:
        return np.nan
    k = below[0]
    if k == 0:
        return float(memorization[0])
    xs, ys = [ratio[k], ratio[k - 1]], [memorization[k], memorization[k - 1]]
    return float(np.interp(level, xs, ys))


def common_memorization(curves: dict[str, pd.DataFrame]) -> tuple[float, pd.Series]:
    """``(level, ratios)``: the lowest ``L / H(p*)`` every curve reaches, and each
    curve's memorization ratio there (:func:`memorization_at`), so runs are compared at
    one loss."""
    level = max(curve["L / H(p*)"].min() for curve in curves.values())
    at = {label: memorization_at(curve, level) for label, curve in curves.items()}
    return float(level), pd.Series(at, dtype=float)


def schedule(
    settings: TuneSettings, update_per: str, lr: float, passes: int, pairs: int
) -> TuneSettings:
    """``settings`` at learning rate ``lr`` on one of two schedules: ``"prompt"``, one
    update per (sub-task, prompt) pair as ``settings`` has it; ``"pass"``, one update
    per pass on ``pairs`` pairs drawn at random, for ``passes`` passes."""
    if update_per == "pass":
        return tune_settings(
            settings, update_per="pass", passes=passes, lr=lr, tasks_per_step=pairs
        )
    return tune_settings(settings, update_per="prompt", lr=lr)


def exact_figures(bench: Bench, model, families) -> dict:
    """Mean exact ``entropy`` and ``valid_mass`` over the held-out prompts of the
    families' enumerable sub-tasks (cached); NaN when there are none."""
    tasks = [
        held_out_task(t)
        for family in families
        for t in family.subtasks
        if t.metadata.get("enumerable")
    ]
    if not tasks:
        return {"entropy": np.nan, "valid_mass": np.nan}

    def compute():
        frame = pd.concat(
            [
                score_prompts(model, bench.tokenizer, t, bench.tokens_per_pass)
                for t in tasks
            ]
        )
        return {
            "entropy": frame["entropy"].mean(),
            "valid_mass": frame["valid_mass"].mean(),
        }

    tasks_key = [t.to_dict() for t in tasks]
    return cached_measure(bench.output_dir, model, "exact", compute, tasks=tasks_key)


def suite_row(bench: Bench, model, trained, held=None) -> dict:
    """Exact figures of ``model`` on the ``trained`` families (ID) and the ``held`` ones
    (OOD; NaN without them), and its :meth:`Bench.changes`."""
    inside = exact_figures(bench, model, trained)
    outside = exact_figures(bench, model, held or [])
    return {
        "ID entropy": inside["entropy"],
        "ID mass": inside["valid_mass"],
        "OOD entropy": outside["entropy"],
        "OOD mass": outside["valid_mass"],
        **bench.changes(model),
    }


def schedule_runs(bench: Bench, trained, held, schedules: dict) -> pd.DataFrame:
    """The base model and one adapter per entry of ``schedules`` (label -> settings),
    tuned on ``trained`` (cached): one :func:`suite_row` each, with ``update_per``,
    ``lr``, ``updates``, the seconds the tuning took and the entropy gains over the base
    model."""
    rows = [{"run": "base", **suite_row(bench, bench.model, trained, held)}]
    for label, settings in schedules.items():
        tuned, history = suite_adapter(
            bench.output_dir, bench.model, bench.tokenizer, trained, settings
        )
        with adapter(tuned):
            rows.append(
                {
                    "run": label,
                    **suite_row(bench, tuned, trained, held),
                    "update_per": settings.update_per,
                    "lr": settings.lr,
                    "updates": int(history["stepped"].sum()),
                    "seconds": history.attrs.get("tune_seconds"),
                }
            )
    return with_gains(pd.DataFrame(rows).set_index("run"))


def with_gains(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (one row per model, one of them indexed ``"base"``) with ``ID entropy
    gain`` and ``OOD entropy gain`` against the base row."""
    gains = {
        f"{column} gain": table[column] - table.loc["base", column]
        for column in ("ID entropy", "OOD entropy")
    }
    return table.assign(**gains)
