"""Chapter 8's runs: each remedy tuned, measured at its stops, and carried into the
six-task suite; every adapter cached, and taken out of the base model on the way out.

- :class:`RemedyBench`: what the runs share (the base model, the monitor of the
  evaluation set ``E`` and the validation names, the paper's ``gamma``, the validation
  stop's patience), with :meth:`~RemedyBench.tune` (a checkpointed run),
  :meth:`~RemedyBench.gamma_stop` (the adapter a run stopping at ``gamma`` ends with),
  :meth:`~RemedyBench.checkpoint`, :meth:`~RemedyBench.row`,
  :meth:`~RemedyBench.fixed_rows` (a fixed list at its two stops),
  :meth:`~RemedyBench.chapter7_curves` (chapter 7's runs, read where cached) and
  :meth:`~RemedyBench.left_out_rows` (the six tasks, one family left out);
- :func:`carried_remedy`: which row of the table the six-task run can take;
- :func:`left_out_figures`: chapter 4's exact measure of a family left out of tuning.

Example::

    monitor = TrainingMonitor(tokenizer, [evaluation, validation], every=5)
    bench = RemedyBench("artifacts", model, tokenizer, monitor, gamma=0.2, patience=2)
    history, folder = bench.tune(fixed, TuneSettings(passes=30), gammas=[0.2])
    with bench.checkpoint(folder, 10) as tuned:  # the adapter after 10 updates
        row = bench.row(measure, "fixed list, 10 updates", tuned, 10, fixed.targets)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .ablation import crossing_update
from .adapters import adapter
from .artifacts import cached_tune, saved_history
from .diagnostics import TrainingMonitor
from .evaluation import suite_adapter
from .remedies import checkpointed_tune, load_checkpoint
from .scoring import score_prompts
from .suite import held_out_task
from .tries import TOKENS_PER_PASS
from .unseen import p_star_share, run_curve, validation_stop


@dataclass
class RemedyBench:
    """What chapter 8's runs share. ``model``: the base model (adapters are put on it
    and taken out again); ``monitor``: a ``TrainingMonitor`` of the evaluation set ``E``
    (a list and its ``metadata['held_out']`` names) and then the validation names;
    ``gamma``: the paper's early stop; ``patience``: the validation stop's
    (``unseen.validation_stop``); ``tokens_per_pass``: speed only."""

    output_dir: str
    model: object
    tokenizer: object
    monitor: TrainingMonitor
    gamma: float
    patience: int
    tokens_per_pass: int = TOKENS_PER_PASS

    def __post_init__(self):
        if len(self.monitor.tasks) != 2:
            raise ValueError(
                "the monitor measures E and the validation names, in that order; got "
                f"{[t.name for t in self.monitor.tasks]}"
            )

    @property
    def evaluation(self):
        """The evaluation set ``E``: the monitor's first task."""
        return self.monitor.tasks[0]

    @property
    def validation(self):
        """The validation names: the monitor's second task."""
        return self.monitor.tasks[1]

    def tune(self, task, settings, save_at=(), gammas=()):
        """``remedies.checkpointed_tune`` of ``task`` with the monitor, its adapter
        taken out of the base model again: ``(history, folder)``; the adapter after
        ``u`` updates is ``bench.checkpoint(folder, u)``."""
        tuned, history, folder = checkpointed_tune(
            self.output_dir,
            self.model,
            self.tokenizer,
            [task],
            settings,
            self.monitor,
            save_at=save_at,
            gammas=gammas,
        )
        with adapter(tuned):
            return history, folder

    def gamma_stop(self, task, settings):
        """``(peft_model, history)`` of the run of ``task`` stopping at ``gamma``
        (cached; a run without early stop saved it on its way), for
        ``with adapter(bench.gamma_stop(task, settings)) as tuned:``."""
        return cached_tune(
            self.output_dir,
            self.model,
            self.tokenizer,
            [task],
            settings,
            early_stop_gamma=self.gamma,
        )

    def gamma_updates(self, task, settings) -> int:
        """The updates a run of ``task`` stopping at ``gamma`` makes (its adapter is
        loaded and taken out again)."""
        tuned, history = self.gamma_stop(task, settings)
        with adapter(tuned):
            return int(history["stepped"].sum())

    def checkpoint(self, folder, update: int):
        """``with bench.checkpoint(folder, u) as tuned:`` the adapter
        :meth:`tune` saved after ``u`` updates, taken out on leaving the block."""
        return adapter(load_checkpoint(self.model, folder, update))

    def row(self, measure, label, model, updates, trained=None) -> dict:
        """``measure.row`` (a ``remedies.Evaluation``) of ``model``, ``updates`` into
        its run; ``trained``: a fixed list's targets (``None`` for fresh lists)."""
        return measure.row(
            self.output_dir, model, self.tokenizer, label, updates, trained
        )

    def fixed_rows(self, measure, task, label, settings):
        """A fixed list ``task`` tuned as :meth:`tune` (with ``gamma``'s adapter saved
        on the way) and measured twice: at its ``gamma`` stop (``"<label>, gamma
        stop"``, or ``"<label>, end, no gamma stop"`` when the run never met it) and at
        its validation stop (``"<label>, validation stop"``). Returns ``(rows,
        curve)``, the curve of ``unseen.run_curve`` with ``validation_mass``."""
        history, folder = self.tune(task, settings, gammas=[self.gamma])
        share = measure.share_under_p_star
        curve = run_curve(history, self.evaluation, share, self.validation.name)
        best = validation_stop(curve, "validation_mass", self.patience)["best"]
        met = crossing_update(history, self.gamma) is not None
        end = "gamma stop" if met else "end, no gamma stop"
        stopped = self.gamma_stop(task, settings)
        updates = int(stopped[1]["stepped"].sum())
        with adapter(stopped) as tuned:
            found = [self.row(measure, f"{label}, {end}", tuned, updates, task.targets)]
        with self.checkpoint(folder, best) as tuned:
            kept = f"{label}, validation stop"
            found.append(self.row(measure, kept, tuned, best, task.targets))
        return found, curve

    def chapter7_curves(self, names, p_star, lr_ranks, **settings) -> dict:
        """Chapter 7's BABYNAMES runs of ``names`` (its list, with its held-out names)
        at each ``(lr, rank)`` of ``lr_ranks``, stopping at ``gamma``, with
        ``settings`` (``passes``, ``seed``): ``{"lr <lr>, r <rank>": run_curve}`` for
        those ``output_dir`` holds, read and never tuned; their ratio is to ``p*``'s
        share on chapter 7's ``E``."""
        share = p_star_share(p_star, names.targets, names.metadata["held_out"])
        found = {}
        for lr, rank in lr_ranks:
            history = saved_history(
                self.output_dir,
                self.model,
                [names],
                lr=lr,
                lora_rank=rank,
                early_stop_gamma=self.gamma,
                **settings,
            )
            if history is not None:
                found[f"lr {lr:g}, r {rank}"] = run_curve(history, names, share)
        return found

    def left_out_rows(self, suite, runs: dict, left_out) -> list[dict]:
        """Chapter 4's leave-one-out, for each family name in ``left_out``: the base
        model, then each of ``runs`` (``{label: (families, settings)}``) tuned on its
        families but the left-out one (``suite_adapter``, cached), each measured on
        ``suite``'s family by :func:`left_out_figures`. One row per model:
        ``{"left out", "run", "entropy", "kl", "valid_mass"}``."""
        rows, tokenizer, width = [], self.tokenizer, self.tokens_per_pass
        for left in left_out:
            family = next(f for f in suite if f.name == left)
            figures = left_out_figures(self.model, tokenizer, family, width)
            rows.append({"left out": left, "run": "base model", **figures})
            for label, (families, settings) in runs.items():
                others = [f for f in families if f.name != left]
                made = suite_adapter(
                    self.output_dir, self.model, tokenizer, others, settings, False
                )
                with adapter(made) as tuned:
                    figures = left_out_figures(tuned, tokenizer, family, width)
                rows.append({"left out": left, "run": label, **figures})
        return rows


def carried_remedy(table: pd.DataFrame, best, carry: dict):
    """The row the six-task run takes: ``best`` (the verdict's pick) when ``carry``
    (labels the suite can take -> what it changes) has it, else the carriable row of
    ``table`` whose ``share_ratio`` is nearest 1 by factor (``|log r|``); ``None``
    when no row is carriable. Example: with ratios 0.5 (``"a"``, carriable) and 0.9
    (``"b"``, not), a pick ``"b"`` gives ``"a"``."""
    if best in carry:
        return best
    ratios = table.loc[
        [label for label in table.index if label in carry], "share_ratio"
    ]
    return np.abs(np.log(ratios.astype(float))).idxmin() if len(ratios) else None


def left_out_figures(model, tokenizer, family, tokens_per_pass=TOKENS_PER_PASS) -> dict:
    """Chapter 4's exact measure of an enumerable ``family``: the exact ``entropy``,
    ``kl`` and ``valid_mass`` over its targets, averaged over the held-out prompts of
    its sub-tasks (``score_prompts`` of ``held_out_task``)."""
    scores = pd.concat(
        [
            score_prompts(model, tokenizer, held_out_task(t), tokens_per_pass)
            for t in family.subtasks
        ]
    )
    return scores[["entropy", "kl", "valid_mass"]].mean().to_dict()
