"""Trie-packed exact scoring: the forward passes that ``tries`` plans, each shared
prefix run once.

A row lays its trie out as one sequence in which a node attends to itself and its
ancestors only (a 4D attention mask) and sits at its position in the original sequence,
so each node computes exactly what it computes in the full sequence; the output head
runs only at nodes that predict a target token. Passes are planned by
:func:`~diffuse_utils.tries.plan_passes`.

Example::

    queries = [Query(prompt_ids, target_ids) for prompt_ids in encoded.prompt_ids]
    with torch.no_grad():
        per_query = packed_logprobs(model, queries)  # list of (T,) tensors, log p(y|x)
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from .decoding import warped_logprobs
from .tries import ATTENTION_BREAK_EVEN, TOKENS_PER_PASS, Query, _Row, plan_passes

# The attention kernels a packed pass may use: every one but cuDNN's, which builds a new
# plan for each new packed width. On an H200 a 13B-shaped tuning update took 511 ms with
# it and 302 ms without (Qwen2.5-1.5B shape: 345 and 268; benchmarks/gpu_check.json,
# "attention_ms_per_update"). The CPU never uses cuDNN.
PACKED_ATTENTION = (
    SDPBackend.FLASH_ATTENTION,
    SDPBackend.EFFICIENT_ATTENTION,
    SDPBackend.MATH,
)
_ATTENTION: ContextVar[tuple] = ContextVar("packed_attention", default=PACKED_ATTENTION)


@contextmanager
def attention_kernels(backends):
    """Inside the block, packed passes may use only ``backends`` (``SDPBackend`` values)
    instead of ``PACKED_ATTENTION``; the setting is restored after.
    ``scripts/gpu_check.py`` times the choices this way. Example:
    ``with attention_kernels([SDPBackend.MATH]): tune(...)``."""
    token = _ATTENTION.set(tuple(backends))
    try:
        yield
    finally:
        _ATTENTION.reset(token)


def _layout(rows: list[_Row], device):
    """Input ids, positions and attention permission ``(R, 1, W, W)`` of a pass. A node
    sees itself and its ancestors; padding sees only itself (a fully masked row would
    give NaN)."""
    width = max(len(row.trie) for row in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    positions = torch.zeros_like(ids)
    allowed = torch.eye(width, dtype=torch.bool).repeat(len(rows), 1, 1)
    for r, row in enumerate(rows):
        n = len(row.trie)
        ids[r, :n] = torch.tensor(row.trie.tokens)
        positions[r, :n] = torch.tensor(row.trie.depths)
        allowed[r, :n, :n] = torch.from_numpy(row.trie.ancestors())
    return ids.to(device), positions.to(device), allowed[:, None].to(device)


def _decoder_and_head(model):
    """The model's transformer body, and a function from its hidden states to logits.

    Running the head only where a log-probability is needed saves much of its cost.
    Gemma-2 style final-logit soft-capping is applied as the model's ``forward``
    would."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    head, cap = (
        base.get_output_embeddings(),
        getattr(base.config, "final_logit_softcapping", None),
    )

    def logits(hidden):
        out = head(hidden)
        return out if cap is None else torch.tanh(out / cap) * cap

    return base.get_decoder(), logits


def _pass_logprobs(model, queries: list[Query], rows: list[_Row], warp: dict):
    """One forward pass: ``(queries, targets, log p(y|x))`` as three aligned 1-D
    tensors/lists."""
    device = model.get_input_embeddings().weight.device
    decoder, head = _decoder_and_head(model)
    ids, positions, allowed = _layout(rows, device)
    dtype = model.get_input_embeddings().weight.dtype
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device).masked_fill(
        ~allowed, torch.finfo(dtype).min
    )
    with sdpa_kernel(list(_ATTENTION.get())):
        hidden = decoder(
            input_ids=ids, position_ids=positions, attention_mask=mask, use_cache=False
        ).last_hidden_state
    width = ids.shape[1]
    needed = sorted(
        {
            r * width + node
            for r, row in enumerate(rows)
            for path in row.trie.paths
            for node in path
        }
    )
    head_row = {flat: k for k, flat in enumerate(needed)}
    logprobs = warped_logprobs(
        head(hidden.reshape(-1, hidden.shape[-1])[torch.tensor(needed, device=device)]),
        **warp,
    )
    picks, tokens, slots, members = [], [], [], []
    for r, row in enumerate(rows):
        for (q, j), path in zip(row.members, row.trie.paths):
            picks += [head_row[r * width + node] for node in path]
            tokens += queries[q].target_ids[j]
            slots += [len(members)] * len(path)
            members.append((q, j))
    picked = logprobs[
        torch.tensor(picks, device=device), torch.tensor(tokens, device=device)
    ]
    totals = torch.zeros(len(members), device=device, dtype=picked.dtype).index_add(
        0, torch.tensor(slots, device=device), picked
    )
    return members, totals


def packed_logprobs(
    model,
    queries: list[Query],
    row_width: int | None = None,
    tokens_per_pass: int = TOKENS_PER_PASS,
    temperature: float = 1.0,
    top_p: float = 1.0,
    min_p: float | None = None,
    break_even: float = ATTENTION_BREAK_EVEN,
) -> list[torch.Tensor]:
    """``log p(y|x)`` of every target of every query: one ``(T,)`` tensor per query, in
    target order.

    With ``temperature`` != 1, ``top_p`` or ``min_p`` it is the probability under
    sampling with that decoding (``-inf`` for a target the filter makes impossible), as
    in ``decoding``.
    row_width, tokens_per_pass, break_even: how passes are planned
    (:func:`~diffuse_utils.tries.plan_passes`; speed and memory only). Run it under
    ``torch.no_grad()`` unless you back-propagate (see :func:`accumulate_gradients`).
    """
    warp = dict(temperature=temperature, top_p=top_p, min_p=min_p)
    device = model.get_input_embeddings().weight.device
    totals = [torch.zeros(len(q.target_ids), device=device) for q in queries]
    for rows in plan_passes(queries, row_width, tokens_per_pass, break_even):
        members, logprobs = _pass_logprobs(model, queries, rows, warp)
        for (q, j), value in zip(members, logprobs.float()):
            totals[q][j] = value
    return totals


def accumulate_gradients(
    model,
    queries: list[Query],
    weights: list[torch.Tensor],
    row_width: int | None = None,
    tokens_per_pass: int = TOKENS_PER_PASS,
    break_even: float = ATTENTION_BREAK_EVEN,
) -> list[float]:
    """Add ``d/dparams sum_q -sum_y weights[q][y] log p(y | x_q)`` to ``.grad``; return
    each query's term.

    Each pass is back-propagated as soon as it is done, so only one pass's activations
    are alive at a time: memory is bounded by ``tokens_per_pass``, not by the number of
    targets.
    """
    losses = [0.0] * len(queries)
    for rows in plan_passes(queries, row_width, tokens_per_pass, break_even):
        members, logprobs = _pass_logprobs(model, queries, rows, {})
        device = logprobs.device
        weight = torch.stack([weights[q][j] for q, j in members]).to(device)
        terms = -(weight * logprobs)
        terms.sum().backward()
        for (q, _), term in zip(members, terms.tolist()):
            losses[q] += term
    return losses
