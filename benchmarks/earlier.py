"""The package's earlier tuning-step and sampling paths, kept as references for the benchmark (not used by the book).

Version 1 ran the prompt once and shared its keys/values across mini-batches of targets
(``batch_logprobs`` with the plain prompt state). Version 2 also ran the targets' common prefix
(``{``) with the prompt and sorted mini-batches by length (``accumulate_task_gradients``).
The package now packs every ``prompt + target`` sequence into tries (``diffuse_utils.packing``).

The sampler before issue 22 (:func:`earlier_sample`, one prompt): each batch's cache is a buffer
sized for the whole generation; a row that stops leaves the batch by re-indexing every layer's
whole buffer (a copy of all rows, all positions, at every step where a row stops); tokens are
drawn by inverse CDF over a float64 cumulative sum of the full vocabulary, after dividing the
logits by the temperature even when it is 1. Same random numbers and laws as the package's
sampler (``diffuse_utils.sampling``), which differs from it only by float rounding in the draw.
"""
from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from diffuse_utils.decoding import warp_logits, warped_logprobs
from diffuse_utils.encoding import encode_prompt
from diffuse_utils.kvcache import prompt_length, rows_of
from diffuse_utils.decoding import decode_answer, halting_ids
from diffuse_utils.sampling import sample_uniforms
from diffuse_utils.scoring import prompt_state
from diffuse_utils.tuning import distribution_matching_loss


def expanded_cache(model, kv, batch: int) -> DynamicCache:
    """A fresh cache holding the prompt's keys/values for ``batch`` rows (the package's sampler before it
    preallocated its cache; the library copies the broadcast rows on the first update)."""
    data = [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv]
    return DynamicCache(data, config=model.config)


def common_prefix_length(target_ids: list[list[int]]) -> int:
    """Tokens every target starts with (e.g. ``{``), leaving at least one token in each target."""
    shortest = min(len(t) for t in target_ids)
    length = 0
    while length < shortest - 1 and all(t[length] == target_ids[0][length] for t in target_ids):
        length += 1
    return length


def folded_prompt_state(model, prompt_ids: list[int], target_ids: list[list[int]], temperature: float = 1.0,
                        top_p: float = 1.0, min_p: float | None = None):
    """:func:`prompt_state` of the prompt *plus the targets' common prefix*, run once.

    Every target starts with ``{`` (and often more), so that part is computed once here
    instead of once per target. Returns ``(prefix_logprob, last_logprobs, kv, rests)``:
    ``log p(common prefix | prompt)`` (0-dim), the state after it, and the targets without it;
    ``log p(y|x) = prefix_logprob + log p(rest | prompt + prefix)``.
    """
    common = common_prefix_length(target_ids)
    prefix = target_ids[0][:common]
    device = model.get_input_embeddings().weight.device
    output = model(input_ids=torch.tensor([prompt_ids + prefix], device=device), use_cache=True,
                   logits_to_keep=common + 1)
    logprobs = warped_logprobs(output.logits[0], temperature, top_p, min_p)
    kv = [(layer.keys, layer.values) for layer in output.past_key_values.layers]
    prefix_logprob = logprobs[torch.arange(common, device=device), torch.tensor(prefix, device=device,
                                                                                  dtype=torch.long)].sum()
    return prefix_logprob, logprobs[-1], kv, [t[common:] for t in target_ids]


def length_order(target_ids: list[list[int]]) -> list[int]:
    """Target indices sorted by length, then tokens: mini-batches of similar length need
    little padding, and targets sharing a prefix sit together."""
    return sorted(range(len(target_ids)), key=lambda i: (len(target_ids[i]), target_ids[i]))


def batch_logprobs(model, last_logprobs, kv, target_ids: list[list[int]], temperature: float = 1.0,
                   top_p: float = 1.0, min_p: float | None = None) -> torch.Tensor:
    """``log p(y|x)`` for a mini-batch of targets given the prompt state. Shape ``(B,)``.

    With ``temperature`` != 1 (or ``top_p`` < 1, ``min_p``) this is the probability of ``y``
    under sampling with that decoding (see ``decoding.warp_logits``), so the sampler's
    distribution is scored exactly; a target that the filter removes gets ``-inf``.

    Targets are right-padded; a padded position is never attended by a real one,
    so the padding value does not matter and is masked out of the sum.
    """
    device = last_logprobs.device
    lengths = torch.tensor([len(t) for t in target_ids], device=device)
    width = int(lengths.max())
    ids = torch.zeros(len(target_ids), width, dtype=torch.long, device=device)
    for row, target in enumerate(target_ids):
        ids[row, :len(target)] = torch.tensor(target, device=device)
    first = last_logprobs[ids[:, 0]]
    if width == 1:
        return first
    prompt_len = kv[0][0].shape[-2]
    inputs = ids[:, :-1]
    positions = torch.arange(prompt_len, prompt_len + width - 1, device=device).expand_as(inputs)
    logits = model(input_ids=inputs, past_key_values=expanded_cache(model, kv, len(target_ids)),
                   attention_mask=torch.ones(len(target_ids), prompt_len + width - 1, device=device,
                                             dtype=torch.long),
                   position_ids=positions, use_cache=True).logits
    picked = warped_logprobs(logits, temperature, top_p, min_p).gather(-1, ids[:, 1:, None])[..., 0]
    mask = torch.arange(1, width, device=device)[None, :] < lengths[:, None]
    return first + torch.where(mask, picked, torch.zeros_like(picked)).sum(-1)


def accumulate_task_gradients(model, prompt_ids: list[int], target_ids: list[list[int]],
                              p_star: torch.Tensor, batch_size: int, scale: float = 1.0) -> float:
    """Add ``scale * d L / d params`` for one prompt to ``.grad``; return ``scale * L``.

    The prompt (with the targets' common prefix, see ``scoring.folded_prompt_state``) runs
    once; its keys/values are detached into leaf tensors, mini-batches of targets of similar
    length back-propagate into them, and their summed gradient goes through the prompt once.
    """
    prefix_logprob, last_logprobs, kv, rests = folded_prompt_state(model, prompt_ids, target_ids)
    roots = [prefix_logprob, last_logprobs] + [t for pair in kv for t in pair]
    leaves = [t.detach().requires_grad_() for t in roots]
    leaf_kv = list(zip(leaves[2::2], leaves[3::2]))
    order = length_order(rests)
    total = 0.0
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        logprobs = leaves[0] + batch_logprobs(model, leaves[1], leaf_kv, [rests[k] for k in chunk])
        loss = scale * distribution_matching_loss(logprobs, p_star[chunk])
        loss.backward()
        total += loss.item()
    pairs = [(root, leaf.grad) for root, leaf in zip(roots, leaves) if leaf.grad is not None]
    torch.autograd.backward([r for r, _ in pairs], [g for _, g in pairs])
    return total


def earlier_draw_tokens(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """One token per row of ``probs`` (B, V): the first whose float64 cumulative sum exceeds ``u * total``."""
    cumulative = probs.double().cumsum(-1)
    chosen = torch.searchsorted(cumulative, uniforms.to(cumulative.device)[:, None] * cumulative[:, -1:],
                                right=True)[:, 0]
    return chosen.clamp_(max=probs.shape[-1] - 1)


def _earlier_next_tokens(logits, temperature, top_p, min_p, uniforms):
    if temperature == 0:
        return logits.argmax(-1)
    warped = warp_logits(logits.float() / temperature, 1.0, top_p, min_p)  # divided even when temperature is 1
    return earlier_draw_tokens(warped.softmax(-1), uniforms)


class EarlierPreallocatedLayer(DynamicLayer):
    """A cache layer in a buffer sized for the whole generation; rows leave by re-indexing the whole buffer."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int):
        super().__init__()
        self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
        self.length = keys.shape[-2]
        self._key_buffer = keys.new_empty(*keys.shape[:2], capacity, keys.shape[-1])
        self._value_buffer = values.new_empty(*values.shape[:2], capacity, values.shape[-1])
        self._key_buffer[:, :, :self.length], self._value_buffer[:, :, :self.length] = keys, values
        self._expose()

    def _expose(self):
        self.keys, self.values = self._key_buffer[:, :, :self.length], self._value_buffer[:, :, :self.length]

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        self._key_buffer[:, :, self.length:end], self._value_buffer[:, :, self.length:end] = key_states, value_states
        self.length = end
        self._expose()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._key_buffer, self._value_buffer = self._key_buffer[indices], self._value_buffer[indices]
        self._expose()


def _earlier_generate_batch(model, kv, rows_count: int, last, stop_ids, max_new_tokens, warp, uniforms):
    """One batch of ``rows_count`` continuations of one prompt (state ``last``, ``kv``); token lists."""
    device, cache = last.device, DynamicCache(config=model.config)
    length = prompt_length(kv)
    sources = torch.zeros(rows_count, dtype=torch.long, device=device)
    for index, layer in enumerate(cache.layers):
        keys, values = (rows_of([kv], index, side, sources, 0, [length], length) for side in (0, 1))
        if type(layer) is DynamicLayer:
            cache.layers[index] = EarlierPreallocatedLayer(keys, values, length + max_new_tokens)
        else:
            layer.update(keys, values)
    mask = torch.ones(rows_count, length + max_new_tokens, dtype=torch.long, device=device)
    lengths = torch.full((rows_count,), length, device=device)
    logits, rows, active = last.expand(rows_count, -1), [[] for _ in range(rows_count)], torch.arange(rows_count)
    for step in range(max_new_tokens):
        chosen = _earlier_next_tokens(logits, *warp, uniforms[active, step])
        for row, token in zip(active.tolist(), chosen.tolist()):
            rows[row].append(token)
        going = ~torch.isin(chosen, stop_ids)
        if not going.any():
            break
        if not going.all():
            keep = going.nonzero()[:, 0]
            for layer in cache.layers:
                layer.batch_select_indices(keep)
            active, chosen, mask, lengths = active[keep.cpu()], chosen[keep], mask[keep], lengths[keep]
        output = model(input_ids=chosen[:, None], past_key_values=cache, position_ids=(lengths + step)[:, None],
                       attention_mask=mask[:, :length + step + 1], use_cache=True)
        cache, logits = output.past_key_values, output.logits[:, -1]
    return rows


@torch.no_grad()
def earlier_sample(model, tokenizer, prompt: str, n: int = 1000, temperature: float = 1.0, top_p: float = 1.0,
                   min_p: float | None = None, max_new_tokens: int = 24, batch_size: int = 100, seed: int = 0) -> list[str]:
    """``diffuse_utils.sample`` as it was before issue 22 (one prompt, no response prefix): same
    per-sample uniforms, so the same seed draws the same texts up to float rounding in the draw."""
    device = model.get_input_embeddings().weight.device
    ends, stop_ids = halting_ids(tokenizer, device)
    last, kv = prompt_state(model, encode_prompt(tokenizer, prompt))
    uniforms, texts = sample_uniforms(seed, n, max_new_tokens), []
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        rows = _earlier_generate_batch(model, kv, count, last, stop_ids, max_new_tokens, (temperature, top_p, min_p),
                                       uniforms[start:start + count])
        texts += [decode_answer(tokenizer, row, ends) for row in rows]
    return texts
