"""The per-token form of the loss: soft next-token targets read from the trie of the
targets.

Eq. 5 scores whole sequences, ``L = -sum_y p*(y) log p_theta(y | x)``. Split each
``log p_theta(y | x)`` into next-token terms (chain rule) and group the terms by the
trie node (the token prefix) that predicts them: a node ``n`` is reached by the targets
that pass through it, with mass ``P*(n) = sum_{y through n} p*(y)``, and continues with
token ``t`` with target probability ``q_n(t) = P*(n t) / P*(n)``. Then, exactly,

    L = sum_n P*(n) * CE(q_n, p_theta(. | x, n)),    CE(q, p) = -sum_t q(t) log p(t),

so fitting per-token soft targets ``q_n`` weighted by ``P*(n)`` is the sequence loss:
the same number and the same gradient. Calibration fine-tuning (Baldelli et al., 2026)
trains on such per-token targets; chapter 2 checks the identity on the embedded model.

Example::

    soft = token_targets(prompt_ids, target_ids, p_star)  # one entry per trie node
    soft.table(tokenizer)  # node, reach P*(n), q_n
    per_token_loss(model, soft).backward()  # = Eq. 5 and its gradient
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .tries import Trie


@dataclass
class TokenTargets:
    """Soft next-token targets of one prompt: for each trie node that predicts a target
    token (``nodes[i]``, an index into ``trie``), its reach ``reach[i] = P*(n)``, the
    next tokens ``tokens[i]`` that targets continue with, and their probabilities
    ``probs[i]`` (sum 1).
    ``where[i] = (j, k)``: target ``j`` predicts its token ``k`` at that node (one such
    pair)."""

    prompt_ids: list[int]
    target_ids: list[list[int]]
    trie: Trie
    nodes: list[int]
    reach: np.ndarray
    tokens: list[list[int]]
    probs: list[np.ndarray]
    where: list[tuple[int, int]]

    def table(self, tokenizer) -> pd.DataFrame:
        """One row per node: the answer prefix it ends, ``P*(reach)``, and ``q_n`` as
        text."""
        rows = []
        for (j, k), reach, tokens, probs in zip(
            self.where, self.reach, self.tokens, self.probs
        ):
            prefix = tokenizer.decode(self.target_ids[j][:k])
            targets = ", ".join(
                f"{tokenizer.decode([t])!r}: {p:.3g}" for t, p in zip(tokens, probs)
            )
            rows.append(
                {
                    "answer so far": repr(prefix),
                    "P*(reach)": reach,
                    "next-token targets q_n": targets,
                }
            )
        return pd.DataFrame(rows)


def token_targets(
    prompt_ids: list[int], target_ids: list[list[int]], p_star
) -> TokenTargets:
    """Per-node soft targets of ``target_ids`` (``T`` token lists after ``prompt_ids``)
    under ``p_star`` (``(T,)``, non-negative, normalized here), read from
    :class:`tries.Trie`. Nodes that no target of positive mass reaches are left out
    (they carry no weight).

    Example: targets ``{1}`` and ``{10}`` at 1/2 each give the node after ``{1`` reach 1
    and targets ``}``: 1/2, ``0``: 1/2."""
    p = np.asarray(p_star, dtype=float)
    if p.ndim != 1 or len(p) != len(target_ids) or len(p) == 0:
        raise ValueError(
            f"p_star must have one weight per target: got shape {p.shape} for "
            f"{len(target_ids)} targets"
        )
    if (p < 0).any() or p.sum() <= 0:
        raise ValueError("p_star must be non-negative with a positive sum")
    if not all(target_ids):
        raise ValueError("every target needs at least one token")
    p = p / p.sum()
    trie = Trie()
    for target in target_ids:
        trie.add(list(prompt_ids) + list(target), len(prompt_ids))
    mass: dict[int, dict[int, float]] = {}
    where: dict[int, tuple[int, int]] = {}
    for j, (path, target) in enumerate(zip(trie.paths, target_ids)):
        for k, (node, token) in enumerate(zip(path, target)):
            where.setdefault(node, (j, k))
            if p[j] > 0:
                bucket = mass.setdefault(node, {})
                bucket[token] = bucket.get(token, 0.0) + p[j]
    nodes = sorted(mass)
    reach = np.array([sum(mass[n].values()) for n in nodes])
    tokens = [list(mass[n]) for n in nodes]
    probs = [np.array(list(mass[n].values())) / r for n, r in zip(nodes, reach)]
    return TokenTargets(
        list(prompt_ids),
        [list(t) for t in target_ids],
        trie,
        nodes,
        reach,
        tokens,
        probs,
        [where[n] for n in nodes],
    )


def node_logprobs(model, soft: TokenTargets) -> torch.Tensor:
    """``(N, V)`` log-softmax of the model's next-token logits at each node of ``soft``:
    one ordinary causal forward pass over the targets that first reach the nodes (padded
    on the right)."""
    device = model.get_input_embeddings().weight.device
    chosen = sorted({j for j, _ in soft.where})
    rows = {j: r for r, j in enumerate(chosen)}
    sequences = [soft.prompt_ids + soft.target_ids[j] for j in chosen]
    width = max(len(s) for s in sequences)
    ids = torch.zeros(len(sequences), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, sequence in enumerate(sequences):
        ids[r, : len(sequence)], mask[r, : len(sequence)] = torch.tensor(sequence), 1
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    # target token k is predicted at position start + k
    start = len(soft.prompt_ids) - 1
    picked = torch.stack([logits[rows[j], start + k] for j, k in soft.where])
    return picked.float().log_softmax(-1)


def per_token_loss(
    model, soft: TokenTargets, weights: np.ndarray | None = None
) -> torch.Tensor:
    """``sum_n w_n * CE(q_n, p_theta(. | n))``, a scalar with gradient; ``w_n = P*(n)``
    by default, which equals Eq. 5. Pass other ``weights`` (``(N,)``, one per node) to
    see another weighting."""
    w = soft.reach if weights is None else np.asarray(weights, dtype=float)
    if w.shape != soft.reach.shape:
        raise ValueError(
            f"weights must have one entry per node ({len(soft.reach)}), got shape "
            f"{w.shape}"
        )
    logprobs = node_logprobs(model, soft)
    terms = [
        -(
            torch.tensor(q, dtype=logprobs.dtype, device=logprobs.device)
            * logprobs[i, t]
        ).sum()
        for i, (t, q) in enumerate(zip(soft.tokens, soft.probs))
    ]
    return (
        torch.tensor(w, dtype=logprobs.dtype, device=logprobs.device)
        * torch.stack(terms)
    ).sum()


def path_mean_weights(soft: TokenTargets, p_star) -> np.ndarray:
    """``(N,)`` node weights of a trainer that draws one target ``y ~ p*`` and averages
    the per-token losses along its path: ``w_n = sum_{y through n} p*(y) / len(y)``.
    Equal to ``P*(n) / L`` when every target has ``L`` tokens; otherwise the nodes of
    longer answers count for less than in Eq. 5."""
    p = np.asarray(p_star, dtype=float) / np.sum(p_star)
    index = {n: i for i, n in enumerate(soft.nodes)}
    w = np.zeros(len(soft.nodes))
    for j, (path, target) in enumerate(zip(soft.trie.paths, soft.target_ids)):
        for node in path:
            if node in index:
                w[index[node]] += p[j] / len(target)
    return w


def gradient_vector(model, loss: torch.Tensor) -> torch.Tensor:
    """The gradient of ``loss`` w.r.t. the model's trainable parameters, flattened
    (``.grad`` untouched)."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat(
        [
            (torch.zeros_like(p) if g is None else g).reshape(-1)
            for p, g in zip(params, grads)
        ]
    )
