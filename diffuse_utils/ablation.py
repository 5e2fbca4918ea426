"""The ablation chapter's tools: a dose knob that needs no re-tuning, where a run
crossed an early-stop threshold, and the rule that picks the defaults (its measurements
are cached by ``artifacts.cached_measure``).

- :func:`scaled_lora`: the adapter with its LoRA update multiplied by a factor
  (``B -> s B``), restored on exit: a dose between the base model (0) and the tuned one
  (1);
- :func:`crossing_update`: the first update whose loss met ``(1 + gamma)`` times its
  minimum;
- :func:`least_dose`: among runs that reached the early stop and kept a utility probe
  within a tolerance of the base model, the one with the least learning rate x updates.

Example::

    with scaled_lora(tuned, 0.5):
        # keyed by these weights
        texts, _ = cached_generations(
            output_dir, tuned, tokenizer, [prompt], 60, label="half"
        )
"""

from __future__ import annotations

from contextlib import contextmanager

import pandas as pd
import torch


@contextmanager
def scaled_lora(model, factor: float):
    """Multiply every LoRA ``B`` matrix of ``model`` by ``factor`` inside the block, and
    put the exact weights back after. The weights change, so caches keyed by the adapter
    see a different adapter."""
    if factor < 0:
        raise ValueError(
            "factor must be >= 0 (0: the base model, 1: the adapter as tuned); got "
            f"{factor}"
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


def least_dose(runs: pd.DataFrame, probe: str, tolerance: float) -> pd.Series | None:
    """The rule that picks the defaults: among ``runs`` (one row each, with columns
    ``lr``, ``updates``, ``stopped`` and ``<probe> change``, in points against the base
    model) that reached the early stop and whose probe fell by at most ``tolerance``
    points, the one with the least ``lr x updates``; ``None`` when no run qualifies."""
    kept = runs[runs["stopped"] & (runs[f"{probe} change"] >= -tolerance)]
    if kept.empty:
        return None
    return kept.loc[(kept["lr"] * kept["updates"]).idxmin()]
