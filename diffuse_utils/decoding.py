"""How a next-token distribution is shaped before sampling: temperature, min-p, top-p.

One definition serves both the sampler and exact scoring, so the probability that
:func:`~diffuse_utils.scoring.target_logprobs` assigns under a decoding setting is exactly
the probability that :func:`~diffuse_utils.sampling.sample` draws that answer with it.
"""
from __future__ import annotations

import torch


def warp_logits(logits: torch.Tensor, temperature: float = 1.0, top_p: float = 1.0,
                min_p: float | None = None) -> torch.Tensor:
    """Apply temperature, then min-p, then top-p (nucleus) filtering. Shape kept ``(B, V)``.

    Filtered tokens get ``-inf``; the most likely token always survives. A temperature of 1 divides
    nothing (``x / 1.0 == x`` exactly), so it is skipped: a pass over ``(B, V)`` saved per step.
    """
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    if min_p is not None:
        probs = logits.softmax(-1)
        logits = logits.masked_fill(probs < min_p * probs.max(-1, keepdim=True).values, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(-1, descending=True)
        before = sorted_logits.softmax(-1).cumsum(-1) - sorted_logits.softmax(-1)
        drop_sorted = before >= top_p
        logits = logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
    return logits


def warped_logprobs(logits: torch.Tensor, temperature: float = 1.0, top_p: float = 1.0,
                    min_p: float | None = None) -> torch.Tensor:
    """Log-probabilities after :func:`warp_logits`, any leading shape ``(..., V)``; filtered tokens get ``-inf``."""
    if top_p >= 1.0 and min_p is None:
        logits = logits.float()
        return (logits if temperature == 1.0 else logits / temperature).log_softmax(-1)
    flat = logits.reshape(-1, logits.shape[-1])
    return warp_logits(flat, temperature, top_p, min_p).log_softmax(-1).reshape(logits.shape)
