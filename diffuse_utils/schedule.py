"""What each update of a tuning run sees: the run's settings, and the order of its
updates.

:class:`TuneSettings` holds every setting that determines an adapter (its fields are the
adapter's cache key). A pass is planned as a list of :class:`Update` objects:

- ``update_per="prompt"`` (the paper's release): every (task, prompt) pair in a seeded
  shuffled order, one update each, on that prompt's whole loss
  ``-sum_y p*(y) log p(y|x)``;
- ``update_per="pass"``: a single update on the sum over tasks of each task's mean over
  its prompts, optionally over a random subset of pairs and of targets (an unbiased
  estimate).

Example::

    settings = TuneSettings(update_per="pass", passes=40, lr=5e-4)
    # one Update
    updates = list(plan_pass(encoded_tasks, np.random.default_rng(0), settings))
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from .encoding import EncodedTask
from .metrics import entropy

PAPER_TARGET_MODULES = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)
UPDATE_SCHEDULES = ("prompt", "pass")


@dataclass(frozen=True)
class TuneSettings:
    """Everything that determines a tuning run, and so an adapter's cache key. Defaults:
    the release's.

    passes: passes over the tasks' prompts (release: 50).
    update_per: ``"prompt"``, one AdamW update per (task, prompt) pair (release), or
        ``"pass"``.
    lr, adam_eps, weight_decay: AdamW (release: 5e-5, 1e-5 and torch's default 0.01).
    max_grad_norm: gradient-norm clipping before each update (release: 1.0).
    lora_rank, lora_alpha, lora_dropout, target_modules: LoRA (release: r = 4 with
        PEFT's default alpha 8 and dropout 0, on q,k,v,o,gate,up,down; ``"all-linear"``
        also works).
    early_stop_gamma: stop once a pass's loss <= (1 + gamma) x its minimum (paper: 0.2
        for open sets).
    tasks_per_step: (task, prompt) pairs drawn per pass (None: all of them).
    targets_per_step: targets drawn from ``p*`` per pair, each weighted by its share of
        the draws (None: all).
    seed: LoRA initialization, prompt order and draws. The caller's random state is left
        as it was.

    Example: ``TuneSettings(update_per="pass", passes=40, lr=5e-4)``.
    """

    passes: int = 50
    update_per: str = "prompt"
    lr: float = 5e-5
    adam_eps: float = 1e-5
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    lora_rank: int = 4
    lora_alpha: float = 8
    lora_dropout: float = 0.0
    target_modules: tuple | str = PAPER_TARGET_MODULES
    early_stop_gamma: float | None = None
    tasks_per_step: int | None = None
    targets_per_step: int | None = None
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.target_modules, str):
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        if self.update_per not in UPDATE_SCHEDULES:
            raise ValueError(
                f"update_per must be one of {UPDATE_SCHEDULES}, got {self.update_per!r}"
            )
        for knob in ("passes", "tasks_per_step", "targets_per_step"):
            value = getattr(self, knob)
            if not (value is None and knob != "passes") and (
                not isinstance(value, int) or value < 1
            ):
                raise ValueError(
                    f"{knob} must be a positive "
                    f"integer{'' if knob == 'passes' else ' or None'}, got {value!r}"
                )


def tune_settings(settings: TuneSettings | None = None, **overrides) -> TuneSettings:
    """``settings`` (default: the release's) with ``overrides`` replaced; unknown names
    are refused."""
    names = [f.name for f in fields(TuneSettings)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        hint = (
            " ('steps' is now 'passes': a pass visits every prompt once)"
            if "steps" in unknown
            else ""
        )
        raise ValueError(
            f"unknown tuning settings {unknown}{hint}; TuneSettings has {names}"
        )
    return replace(settings or TuneSettings(), **overrides)


@dataclass
class Update:
    """One optimizer update: (encoded task, prompt ids, target indices, weights) items,
    and the minimum of the loss it measures."""

    items: list
    optimal: float


def _draw_targets(
    p_star: np.ndarray, rng: np.random.Generator, targets_per_step: int | None
):
    """All targets weighted by ``p*``, or ``targets_per_step`` draws from ``p*``, each
    distinct draw weighted by its share of the draws (an unbiased estimate of the full
    loss)."""
    if targets_per_step is None or targets_per_step >= len(p_star):
        return np.arange(len(p_star)), p_star
    indices, counts = np.unique(
        rng.choice(len(p_star), size=targets_per_step, p=p_star), return_counts=True
    )
    return indices, counts / targets_per_step


def _pairs(encoded: list[EncodedTask]) -> list[tuple[int, int]]:
    return [
        (i, j) for i, item in enumerate(encoded) for j in range(len(item.prompt_ids))
    ]


def _per_pass(
    encoded: list[EncodedTask], rng: np.random.Generator, settings: TuneSettings
):
    """One update over all (task, prompt) pairs, each task's loss the mean over its
    prompts; with ``tasks_per_step``, a uniform draw of pairs scaled by
    ``n_pairs / tasks_per_step`` (unbiased)."""
    pairs, boost = _pairs(encoded), 1.0
    if settings.tasks_per_step is not None and settings.tasks_per_step < len(pairs):
        picks = rng.choice(len(pairs), size=settings.tasks_per_step, replace=False)
        pairs, boost = (
            [pairs[k] for k in sorted(picks)],
            len(pairs) / settings.tasks_per_step,
        )
    items = []
    for i, j in pairs:
        item = encoded[i]
        indices, weights = _draw_targets(
            item.task.probabilities, rng, settings.targets_per_step
        )
        items.append(
            (item, item.prompt_ids[j], indices, weights * boost / len(item.prompt_ids))
        )
    yield Update(items, sum(entropy(item.task.probabilities) for item in encoded))


def _per_prompt(
    encoded: list[EncodedTask], rng: np.random.Generator, settings: TuneSettings
):
    """One update per (task, prompt) pair, in a shuffled order (the first
    ``tasks_per_step`` of it), each on that prompt's whole loss, as the release does."""
    pairs = _pairs(encoded)
    for k in rng.permutation(len(pairs))[: settings.tasks_per_step]:
        item, j = encoded[pairs[k][0]], pairs[k][1]
        indices, weights = _draw_targets(
            item.task.probabilities, rng, settings.targets_per_step
        )
        yield Update(
            [(item, item.prompt_ids[j], indices, weights)],
            entropy(item.task.probabilities),
        )


def plan_pass(
    encoded: list[EncodedTask], rng: np.random.Generator, settings: TuneSettings
):
    """The updates of one pass under ``settings.update_per`` (draws come from
    ``rng``)."""
    return (_per_prompt if settings.update_per == "prompt" else _per_pass)(
        encoded, rng, settings
    )
