"""Chapter 2: distribution matching is KL minimization, checked.

- :func:`fit_tree`: the loss fitted on a two-level token tree, with and without an
  end-of-turn token after the answer ``1`` (why targets must be prefix-free);
- :func:`compare_forms`: the sequence loss (Eq. 5) against its per-token form, and
  their gradients;
- :func:`angle_degrees`: the angle between two gradients.

Example::

    fit_tree(with_end_token=True)  # {"p(target '1')": 0.5, "p(target '10')": 0.5, ...}
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch


def fit_tree(with_end_token: bool, steps: int = 500, lr: float = 0.1) -> dict:
    """The targets ``1`` and ``10`` at 1/2 each, fitted by the loss (Adam on free
    logits) on a two-level token tree: p(first token) over ``[1, other]``, then
    p(next | ``1``) over ``[0, eot, other]``. With the end token, target ``1`` is
    ``1 eot`` and ``10`` is followed by eot with probability 1; without it, ``1`` is a
    prefix of ``10``. Returns the fitted probability of each target and their sum.
    Example: ``fit_tree(False)`` -> both near 1, sum near 2; ``fit_tree(True)`` -> 1/2
    each."""
    first = torch.zeros(2, requires_grad=True)  # [1, other]
    second = torch.zeros(3, requires_grad=True)  # [0, eot, other]
    optimizer = torch.optim.Adam([first, second], lr=lr)
    for _ in range(steps):
        lp1, lp2 = first.log_softmax(-1), second.log_softmax(-1)
        p_one = lp1[0] + (lp2[1] if with_end_token else 0)  # log p('1' [+ eot])
        p_ten = lp1[0] + lp2[0]  # log p('1', '0')
        loss = -(0.5 * p_one + 0.5 * p_ten)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {
        "p(target '1')": p_one.exp().item(),
        "p(target '10')": p_ten.exp().item(),
        "sum": (p_one.exp() + p_ten.exp()).item(),
    }


def compare_forms(
    sequence_loss: torch.Tensor,
    token_loss: torch.Tensor,
    g_sequence: torch.Tensor,
    g_token: torch.Tensor,
) -> pd.Series:
    """The sequence loss (Eq. 5) and the per-token loss, the norms of their gradients
    (``(P,)`` vectors, ``token_targets.gradient_vector``), and three relative
    differences: of the losses, of the gradient norms, and of the gradient vectors
    (``|g_token - g_sequence| / |g_sequence|``).
    Example: equal losses and gradients -> every relative difference 0."""
    return pd.Series(
        {
            "sequence loss (Eq. 5)": sequence_loss.item(),
            "per-token loss": token_loss.item(),
            "gradient norm, sequence": g_sequence.norm().item(),
            "gradient norm, per-token": g_token.norm().item(),
            "relative difference, loss": abs(
                token_loss.item() / sequence_loss.item() - 1
            ),
            "relative difference, gradient norm": abs(
                g_token.norm().item() / g_sequence.norm().item() - 1
            ),
            "relative difference, gradient vector": (
                (g_token - g_sequence).norm() / g_sequence.norm()
            ).item(),
        }
    )


def angle_degrees(a: torch.Tensor, b: torch.Tensor) -> float:
    """Degrees between two gradients, in float64 (float32 sums over a million entries
    are off by 1e-4). Example: ``angle_degrees(torch.tensor([1.0, 0.0]),
    torch.tensor([1.0, 1.0]))`` -> 45.0."""
    a, b = a.double(), b.double()
    cosine = (a @ b / (a.norm() * b.norm())).clamp(-1, 1)
    return float(np.degrees(torch.arccos(cosine).item()))
