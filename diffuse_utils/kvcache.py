"""The sampler's key/value cache: one buffer per layer, sized for the whole generation.

A decoding step writes one position into place instead of re-concatenating the cache,
and a row that stops leaves the batch by moving the last rows into its place (a few rows
copied) instead of re-indexing every row of every layer's buffer. Rows of several
prompts may share a batch: each prompt sits left-aligned, followed by a masked gap up to
the longest prompt.

Example::

    # mask (100, P + 16)
    cache, mask = preallocated_cache(model, [kv], sources=[0] * 100, new_tokens=16)
    # rows where ``going`` is False leave; others are reordered by ``order``
    order = leave_batch(cache, going)
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


class PreallocatedLayer(DynamicLayer):
    """A cache layer whose keys/values live in a buffer of ``capacity`` positions; the
    first ``rows`` rows and ``length`` positions are live, and attention sees a view of
    them.

    ``DynamicLayer`` concatenates at every step, copying the whole cache each time (a
    quarter of a CPU decoding step); this one writes the new position into place."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int):
        super().__init__()
        self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
        self.rows, self.length = keys.shape[0], keys.shape[-2]
        self._key_buffer = keys.new_empty(*keys.shape[:2], capacity, keys.shape[-1])
        self._value_buffer = values.new_empty(
            *values.shape[:2], capacity, values.shape[-1]
        )
        self._key_buffer[:, :, : self.length] = keys
        self._value_buffer[:, :, : self.length] = values
        self._expose()

    def _expose(self):
        self.keys = self._key_buffer[: self.rows, :, : self.length]
        self.values = self._value_buffer[: self.rows, :, : self.length]

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        if end > self._key_buffer.shape[-2]:
            raise RuntimeError(
                f"the sampling cache holds {self._key_buffer.shape[-2]} positions; "
                f"{end} were asked for."
            )
        self._key_buffer[: self.rows, :, self.length : end] = key_states
        self._value_buffer[: self.rows, :, self.length : end] = value_states
        self.length = end
        self._expose()
        return self.keys, self.values

    def move_rows(self, holes: torch.Tensor, movers: torch.Tensor, rows: int) -> None:
        """Copy rows ``movers`` into rows ``holes`` (live positions only), then keep the
        first ``rows``."""
        for buffer in (self._key_buffer, self._value_buffer):
            buffer[holes, :, : self.length] = buffer[movers, :, : self.length]
        self.rows = rows
        self._expose()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._key_buffer, self._value_buffer = (
            self._key_buffer[indices],
            self._value_buffer[indices],
        )
        self.rows = len(indices)
        self._expose()


def leave_batch(cache: DynamicCache, going: torch.Tensor) -> torch.Tensor:
    """Drop the rows where ``going`` (bool, (B,)) is False. Returns ``order`` (k,): new
    row ``j`` is old row ``order[j]``; reorder every per-row tensor with it.

    The last kept rows move into the places of the dropped ones among the first ``k``
    (in a :class:`PreallocatedLayer`, a copy of those rows only); other layer kinds are
    re-indexed.
    Example: ``going = [T, F, T, T]`` gives ``order = [0, 3, 2]``."""
    rows = int(going.sum())
    order = torch.arange(rows, device=going.device)
    holes = (~going[:rows]).nonzero()[:, 0]
    movers = going[rows:].nonzero()[:, 0] + rows
    order[holes] = movers
    for layer in cache.layers:
        if isinstance(layer, PreallocatedLayer):
            layer.move_rows(holes, movers, rows)
        else:
            layer.batch_select_indices(order)
    return order


def preallocated_cache(
    model, kvs: list, sources: list[int], new_tokens: int
) -> tuple[DynamicCache, torch.Tensor]:
    """A cache for ``len(sources)`` rows, row ``r`` holding the keys/values of prompt
    ``kvs[sources[r]]``, with room for ``new_tokens`` more. Returns
    ``(cache, attention mask)``.

    Prompts of different lengths sit left-aligned: row ``r`` has its prompt, then a
    masked gap up to the longest prompt, then the generated positions, so every step
    writes the same column. The mask ``(rows, longest + new_tokens)`` is 1 on prompt and
    generated columns, 0 in gaps. Full-attention layers get a
    :class:`PreallocatedLayer`; other layer kinds (sliding windows, as in Gemma-2) keep
    the library's own layer, which is correct for one prompt at a time (see
    :func:`mixes_prompts`), only slower."""
    rows, cache = (
        torch.as_tensor(sources, device=kvs[0][0][0].device),
        DynamicCache(config=model.config),
    )
    lengths = [prompt_length(kv) for kv in kvs]
    width = max(lengths[p] for p in set(sources))
    single = sources[0] if len(set(sources)) == 1 else None
    mask = torch.ones(
        len(sources), width + new_tokens, dtype=torch.long, device=kvs[0][0][0].device
    )
    for p in set(sources):
        mask[rows == p, lengths[p] : width] = 0
    for index, layer in enumerate(cache.layers):
        keys, values = (
            rows_of(kvs, index, side, rows, single, lengths, width) for side in (0, 1)
        )
        if type(layer) is DynamicLayer:
            cache.layers[index] = PreallocatedLayer(
                keys, values, keys.shape[-2] + new_tokens
            )
        else:
            layer.update(keys, values)
    return cache, mask


def prompt_length(kv) -> int:
    """Tokens of a prompt whose per-layer ``(keys, values)`` are ``kv``: the longest
    layer's (a sliding-window layer may keep only the last window of them)."""
    return max(keys.shape[-2] for keys, _ in kv)


def rows_of(
    kvs,
    layer: int,
    side: int,
    rows: torch.Tensor,
    single: int | None,
    lengths: list[int],
    width: int,
) -> torch.Tensor:
    """Keys (``side`` 0) or values (1) of one layer for every row: its prompt's, zero in
    the gap (zeros, not garbage: a masked position gets weight 0, and 0 * NaN would
    still be NaN).
    ``single``: the one prompt every row continues, broadcast without a copy; ``None``
    if several."""
    if single is not None:
        return kvs[single][layer][side].expand(len(rows), -1, -1, -1)
    first = kvs[0][layer][side]
    out = first.new_zeros(len(rows), first.shape[1], width, first.shape[-1])
    for p in rows.unique().tolist():
        out[rows == p, :, : lengths[p]] = kvs[p][layer][side][0]
    return out


def mixes_prompts(model) -> bool:
    """Whether rows of different prompts may share a batch: only where every layer is a
    plain full-attention layer, so the gap between a short prompt and its answer is only
    masked."""
    return all(
        type(layer) is DynamicLayer
        for layer in DynamicCache(config=model.config).layers
    )
