"""Chapter 7's tools: the measurements every run shares, a dose knob that needs no
re-tuning, where a run crossed an early-stop threshold, and the rules that pick the
defaults. The runs themselves are in :mod:`~diffuse_utils.ablation_runs`; their outcomes
are said in sentences by :mod:`~diffuse_utils.verdicts`.

- :class:`Bench`: the cache folder, the base model and the utility probe (measured once
  on the base model: the reference of every change);
- :class:`BiographyProbe`: the exact end-of-turn probe after a pre-filled ``{Name}``,
  and the format of sampled biographies, freely or with the end of turn held;
- :func:`scaled_lora`: the adapter with its LoRA update multiplied by a factor
  (``B -> s B``), restored on exit: a dose between the base model (0) and the tuned one
  (1);
- :func:`crossing_update`: the first update whose loss met ``(1 + gamma)`` times its
  minimum;
- :func:`least_dose` and :func:`best_transfer`: the rules that pick BABYNAMES' and the
  six tasks' defaults;
- :func:`adapter_points`: every adapter of the chapter as one row, diversity gained
  against utility kept.

Example::

    bench = Bench("artifacts", model, tokenizer, UtilityProbe(capital_questions(100)))
    with bench.adapter(families, settings) as tuned, scaled_lora(tuned, 0.5):
        bench.changes(tuned)  # utility against the base model, at half the dose
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from .adapters import adapter
from .artifacts import cached_generations, cached_measure
from .biographies import BIOGRAPHY_PROMPT
from .decoding import SampleSettings
from .evaluation import suite_adapter
from .format_probes import biography_format, turn_ending_probe
from .metrics import proportion_change
from .schedule import TuneSettings
from .scoring import score_prompts
from .tasks import Task
from .tries import TOKENS_PER_PASS

UTILITY_KEYS = ("qa_named", "qa_exact", "knowledge")


@dataclass
class Bench:
    """What the chapter's measurements share. output_dir: the cache folder; model: the
    base model (adapters are loaded into it and taken out again); probe: a
    ``utility.UtilityProbe``, measured once on the base model here (``base_utility``) as
    the reference of :meth:`changes`; tokens_per_pass, batch_size: speed only."""

    output_dir: str
    model: object
    tokenizer: object
    probe: object
    tokens_per_pass: int = TOKENS_PER_PASS
    batch_size: int = 100
    base_utility: dict = field(init=False)

    def __post_init__(self):
        self.base_utility = self.utility(self.model)

    def utility(self, model) -> dict:
        """The probe's figures of ``model`` (cached per adapter weights)."""
        return cached_measure(
            self.output_dir,
            model,
            "utility",
            lambda: self.probe.measure(model, self.tokenizer),
            **self.probe.key(),
        )

    def changes(self, model) -> dict:
        """``<probe> change`` (points against the base model) and ``<probe> se`` (its
        standard error over the questions) for qa_named, qa_exact and knowledge, and
        ``perplexity``."""
        after, row = self.utility(model), {}
        for key in UTILITY_KEYS:
            change, error = proportion_change(
                after[key], self.base_utility[key], len(self.probe.questions)
            )
            row[f"{key} change"], row[f"{key} se"] = change, error
        return {**row, "perplexity": after.get("perplexity", np.nan)}

    def adapter(self, families, settings: TuneSettings):
        """``with bench.adapter(families, settings) as tuned:`` the adapter tuned on the
        task families (cached), taken out of the base model on leaving the block."""
        return adapter(
            suite_adapter(
                self.output_dir, self.model, self.tokenizer, families, settings
            )
        )


@dataclass(frozen=True)
class BiographyProbe:
    """Biographies of ``BIOGRAPHY_PROMPT``: the exact end-of-turn probe after each of
    ``first_fields`` pre-filled as ``{Name}``, and the format of ``n`` biographies
    sampled under ``settings`` (whose response prefix should be ``"{"``), all cached."""

    first_fields: tuple
    n: int
    settings: SampleSettings

    def measure(self, bench: Bench, model, label: str) -> dict:
        """The probe's mean ``p(end of turn)``, ``p(newline)``, most frequent ``top next
        token``, and :func:`~diffuse_utils.format_probes.biography_format` of a free
        draw."""
        fields = list(self.first_fields)
        ending = cached_measure(
            bench.output_dir,
            model,
            "turn-ending",
            lambda: turn_ending_probe(
                model, bench.tokenizer, BIOGRAPHY_PROMPT, fields
            ).to_dict("list"),
            fields=fields,
        )
        tops = ending["top_token"]
        return {
            "model": label,
            "p(end of turn)": np.mean(ending["p_end_of_turn"]),
            "p(newline)": np.mean(ending["p_newline"]),
            "top next token": max(set(tops), key=tops.count),
            **biography_format(self._draw(bench, model, self.settings, label)),
        }

    def held(self, bench: Bench, model, label: str, fields: int = 6) -> dict:
        """:func:`~diffuse_utils.format_probes.biography_format` of biographies sampled
        with the end of turn forbidden until ``fields`` braced fields have closed."""
        settings = replace(self.settings, closing_fields=fields)
        texts = self._draw(bench, model, settings, f"held-{label}")
        return {"model": label, **biography_format(texts)}

    def _draw(self, bench: Bench, model, settings: SampleSettings, label: str):
        (texts,), _ = cached_generations(
            bench.output_dir,
            model,
            bench.tokenizer,
            [BIOGRAPHY_PROMPT],
            self.n,
            settings,
            label=label,
            batch_size=bench.batch_size,
        )
        return texts


def mean_entropy(bench: Bench, model, tasks: list[Task]) -> dict[str, float]:
    """Exact entropy over each task's targets, averaged over its prompts (nats), by
    task name."""
    tokenizer, tokens = bench.tokenizer, bench.tokens_per_pass
    return {
        t.name: score_prompts(model, tokenizer, t, tokens)["entropy"].mean()
        for t in tasks
    }


@contextmanager
def scaled_lora(model, factor: float):
    """Multiply every LoRA ``B`` matrix of ``model`` by ``factor`` inside the block, and
    put the exact weights back after. The weights change, so caches keyed by the adapter
    see a different adapter."""
    if factor < 0:
        raise ValueError(
            f"factor must be >= 0 (0: the base model, 1: the adapter as tuned); "
            f"got {factor}"
        )
    saved = {
        name: p.detach().clone()
        for name, p in model.named_parameters()
        if "lora_B" in name
    }
    if not saved:
        raise ValueError(
            "the model has no LoRA adapter to scale (no parameter named lora_B)"
        )
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name in saved:
            parameters[name].mul_(factor)
    try:
        yield model
    finally:
        with torch.no_grad():
            for name, value in saved.items():
                parameters[name].copy_(value)


def crossing_update(history: pd.DataFrame, gamma: float) -> int | None:
    """The first update whose recorded loss is at most ``(1 + gamma)`` times its
    minimum, or ``None``."""
    rows = history.dropna(subset=["loss"])
    met = rows[rows["loss"] <= (1 + gamma) * rows["optimal_loss"]]
    return None if met.empty else int(met["update"].iloc[0])


def least_dose(
    runs: pd.DataFrame, probe: str, tolerance: float, gamma=None, rank=None
) -> pd.Series | None:
    """The rule that picks BABYNAMES' default: among ``runs`` (``names_runs``'
    table, or any frame with ``lr``, ``updates``, ``stopped`` and ``<probe> change`` in
    points against the base model), those at threshold ``gamma`` and LoRA ``rank`` (when
    given) that reached the early stop and whose probe fell by at most ``tolerance``
    points, the one with the least ``lr x updates``; ``None`` when no run qualifies."""
    if gamma is not None:
        runs = runs[runs["gamma"] == gamma]
    if rank is not None:
        runs = runs[runs["rank"] == rank]
    kept = runs[runs["stopped"] & (runs[f"{probe} change"] >= -tolerance)]
    if kept.empty:
        return None
    return kept.loc[(kept["lr"] * kept["updates"]).idxmin()]


def best_transfer(runs: pd.DataFrame, probe: str, tolerance: float) -> str | None:
    """The rule that picks the six-task default: among ``runs`` (indexed by label, with
    ``OOD entropy gain`` and ``<probe> change``) whose probe fell by at most
    ``tolerance`` points, the label with the largest gain of the left-out family's exact
    entropy; ``None`` when no run qualifies."""
    kept = runs[runs[f"{probe} change"] >= -tolerance].dropna(
        subset=["OOD entropy gain"]
    )
    return None if kept.empty else kept["OOD entropy gain"].idxmax()


def adapter_points(
    names: pd.DataFrame, base_names: dict, suite: pd.DataFrame, defaults
) -> pd.DataFrame:
    """Every adapter as one row: ``experiment``, ``label``, the entropy it gained on
    what it was tuned for (``ID gain``: BABYNAMES' valid names over ``base_names``, or
    the six-task runs' ID exact entropy), on the left-out family (``OOD gain``), its
    utility changes, and ``book default`` (its label is in ``defaults``)."""
    names = names.assign(
        experiment="BABYNAMES",
        label=names["run"],
        **{"OOD gain": np.nan},
        **{"ID gain": names["entropy_valid"] - base_names["entropy_valid"]},
    )
    suite = suite.drop(index="base").rename_axis("label").reset_index()
    suite = suite.assign(
        experiment="six tasks",
        **{"ID gain": suite["ID entropy gain"], "OOD gain": suite["OOD entropy gain"]},
    )
    points = pd.concat([names, suite], ignore_index=True)
    return points.assign(**{"book default": points["label"].isin(set(defaults))})
