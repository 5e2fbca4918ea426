"""Chapter 3's measurements: one task (RNG, BABYNAMES) tuned, and its adapter read
against the base model, at each early stop and at each learning rate; the rows of the
paper's Table 1.

- :class:`TaskBench`: what the chapter's runs share (the cache folder, the base model,
  how answers are drawn), with :meth:`~TaskBench.draw` (answers read from their
  braces), :meth:`~TaskBench.gamma_row` (the adapter at one early stop, sampled) and
  :meth:`~TaskBench.rate_row` (the adapter at one learning rate, measured exactly);
- :func:`exact_row`: a task's exact figures (valid mass, entropy, KL from ``p*``)
  beside those of its sampled answers;
- :func:`names_row`: sampled names read against the tuning targets (the share of them,
  and of the distinct ones, outside the targets);
- :func:`table1_row`: one row of Table 1 (entropy and coverage over valid answers).

Example::

    bench = TaskBench("artifacts", model, tokenizer, 100, SampleSettings(seed=0))
    rng = range_task(1, 10)
    answers = bench.draw(model, "base", rng.prompts[0])
    exact_row(rng, target_logprobs(model, tokenizer, rng), answers)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from .adapters import adapter
from .answers import answer_figures, parse_braces
from .artifacts import cached_generations, cached_tune
from .decoding import SampleSettings
from .diagnostics import task_diagnostics
from .metrics import entropy, kl_divergence
from .schedule import TuneSettings, tune_settings
from .scoring import conditional_distribution, valid_mass
from .tasks import Task
from .tries import TOKENS_PER_PASS


@dataclass(frozen=True)
class TaskBench:
    """What chapter 3's measurements share. output_dir: the cache folder; model: the
    base model (adapters are tuned into it and taken out again); n: answers drawn per
    model and prompt under ``sampling`` (cached); tokens_per_pass, batch_size: speed
    only."""

    output_dir: str
    model: object
    tokenizer: object
    n: int
    sampling: SampleSettings = field(default_factory=SampleSettings)
    tokens_per_pass: int = TOKENS_PER_PASS
    batch_size: int = 100

    def draw(self, model, label: str, prompt: str) -> list[str | None]:
        """``n`` generations of ``prompt`` by ``model`` (cached; ``label`` names the
        file), each read from its braces (``None`` where there are none)."""
        (texts,), _ = cached_generations(
            self.output_dir,
            model,
            self.tokenizer,
            [prompt],
            self.n,
            self.sampling,
            label=label,
            batch_size=self.batch_size,
        )
        return [parse_braces(t) for t in texts]

    def _tune(self, task: Task, settings: TuneSettings, **options):
        return cached_tune(
            self.output_dir,
            self.model,
            self.tokenizer,
            [task],
            settings,
            tokens_per_pass=self.tokens_per_pass,
            **options,
        )

    def gamma_row(self, task: Task, settings: TuneSettings, gamma, check) -> dict:
        """The adapter tuned on ``task`` under ``settings`` until the early stop at
        ``gamma`` (cached: a run that saved it on its way is reused), sampled: its
        ``gamma``, ``updates`` and :func:`names_row` with ``check``."""
        tuned, history = self._tune(task, settings, early_stop_gamma=gamma)
        with adapter(tuned):
            answers = self.draw(tuned, f"tuned-{task.name}", task.prompts[0])
        updates = int(history["stepped"].sum())
        return {"gamma": gamma, "updates": updates, **names_row(answers, check, task)}

    def rate_row(
        self, task: Task, settings: TuneSettings, rate, gamma=None, **options
    ) -> dict:
        """The adapter tuned on ``task`` under ``settings`` at learning rate ``rate``
        and early stop ``gamma`` (cached; ``options``: ``cached_tune``'s monitor and
        also_save_gammas, to reuse a run made with them), measured exactly at its end:
        ``updates``, ``stopped early`` (fewer updates than the passes), ``L / H(p*) -
        1``, ``KL``, ``valid mass``, ``memorization`` (NaN without held-out answers)
        and the ``seconds`` the tuning took."""
        run = tune_settings(settings, lr=rate, early_stop_gamma=gamma)
        tuned, history = self._tune(task, run, **options)
        with adapter(tuned), torch.no_grad():
            final = task_diagnostics(tuned, self.tokenizer, task, self.tokens_per_pass)
        updates = int(history["stepped"].sum())
        return {
            "task": task.name,
            "lr": rate,
            "updates": updates,
            "stopped early": updates < run.passes,
            "L / H(p*) - 1": final["L"] / final["H"] - 1,
            "KL": final["KL"],
            "valid mass": np.exp(-final["neg_log_mass"]),
            "memorization": final.get("memorization", np.nan),
            "seconds": history.attrs["tune_seconds"],
        }


def exact_row(task: Task, logprobs: pd.Series, answers: list) -> dict:
    """``exact valid mass``, ``exact entropy`` and ``exact KL(p* || p)`` of the model
    whose target log-probs (first prompt) are ``logprobs``, with the figures of its
    sampled ``answers`` (``answers.answer_figures``: valid as the task's targets).
    Example: targets '1', '2' at probabilities 0.3 and 0.1 give valid mass 0.4 and a
    conditional distribution (0.75, 0.25)."""
    exact = conditional_distribution(logprobs)
    return {
        "exact valid mass": valid_mass(logprobs),
        "exact entropy": entropy(exact),
        "exact KL(p* || p)": kl_divergence(task.probabilities, exact),
        **answer_figures(answers, task.targets, prompt=task.prompts[0], lists=False),
    }


def names_row(answers: list, check, task: Task) -> dict:
    """The figures of sampled ``answers`` (``answers.answer_figures``: valid by
    ``check``, the prompt's ``{name}`` no answer) and the share of the valid ones, and
    of the distinct valid ones, outside ``task``'s targets. Example: valid answers Ava,
    Ava, Zoe, Liam against the targets Ava, Mia: a share of 0.5 outside, and 2 of 3
    distinct."""
    figures = answer_figures(answers, check, task.targets, task.prompts[0])
    valid, _ = figures.pop("answers"), figures.pop("rejected")
    targets = set(task.targets)
    outside = {a for a in valid if a not in targets}
    return {
        **figures,
        "share of valid names outside targets": figures["outside_share"],
        "distinct valid names outside targets": len(outside),
        "share of distinct valid names outside targets": (
            len(outside) / max(len(set(valid)), 1)
        ),
    }


def table1_row(
    task: str, summary: pd.DataFrame, natural_entropy, natural_coverage, model=None
) -> dict:
    """Table 1's row of ``task``: ``entropy_`` and ``coverage_`` over valid answers of
    the ``baseline`` and ``tuned`` models (``summary``'s rows ``base`` and ``tuned``,
    columns ``entropy_valid`` and ``coverage_valid``), and of the ``natural``
    distribution. model: the label of the model (default ``SmolLM2-135M``)."""
    return {
        "task": task,
        "model": model or "SmolLM2-135M",
        **{
            f"{metric}_{column}": summary.loc[row, f"{metric}_valid"]
            for metric in ("entropy", "coverage")
            for column, row in (("baseline", "base"), ("tuned", "tuned"))
        },
        "entropy_natural": natural_entropy,
        "coverage_natural": natural_coverage,
    }
