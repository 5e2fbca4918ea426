"""Sampling many short answers from one prompt, reproducibly, and parsing braces.

The prompt is prefilled once; each batch of ``batch_size`` continuations starts
from a copy of its key/value cache in a buffer sized for the whole generation, so a
decoding step writes one position instead of re-concatenating the cache. Tokens are
drawn by inverse-CDF sampling from a table of uniform numbers made once from the
seed, one row per sample: sample ``i`` depends only on the seed, ``i`` and the settings,
so the same seed gives the same samples whatever ``batch_size``, and the first ``n``
samples of a larger draw are the draw of ``n`` (caches serve them, see
``evaluation.cached_samples``). ``sample_prompts`` fills batches with rows of several
prompts, for when each prompt needs fewer samples than a batch holds.

Example::

    texts = sample(model, tokenizer, RNG_PROMPT, n=1000, seed=0)   # ['{7}', '{3}', ...]
    [parse_braces(t) for t in texts]                               # ['7', '3', ...]
"""
from __future__ import annotations

import re

import torch
from tqdm.auto import tqdm
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from .decoding import warp_logits  # noqa: F401  (re-exported: sampling.warp_logits)
from .encoding import encode_prompt, end_of_turn_ids, tokens_containing
from .scoring import prompt_state

_BRACES = re.compile(r"\{([^{}]*)\}")
# How texts are decoded; part of cache keys, so cached generations are redone when it changes.
DECODING = ("cut at the first stop token; other special tokens kept as text; finished rows leave the batch; "
            "inverse-CDF draws from per-sample uniforms")


def braced_spans(text: str) -> list[str]:
    """Every ``{...}`` content in ``text``: ``braced_spans("like this: {name}.") -> ['name']``."""
    return _BRACES.findall(text)


def parse_braces(text: str) -> str | None:
    """Content of the first ``{...}`` in ``text``, stripped; ``None`` if there is none.

    Example: ``parse_braces("Sure! {7}.") -> "7"``; ``parse_braces("7") -> None``.
    """
    match = _BRACES.search(text)
    return match.group(1).strip() if match else None


def sample_uniforms(seed: int, n: int, max_new_tokens: int) -> torch.Tensor:
    """The uniform numbers that drive ``n`` samples, ``(n, max_new_tokens)`` float64, on the CPU.

    Row ``i`` depends only on ``seed``, ``i`` and ``max_new_tokens`` (the CPU generator fills the
    table in order), so a sample does not depend on how many are drawn or how they are batched;
    made on the CPU so that a GPU run draws the same numbers."""
    return torch.rand(n, max_new_tokens, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def draw_tokens(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """One token per row of ``probs`` (B, V), by inverse-CDF sampling: ``uniforms[b]`` in [0, 1)
    picks the first token whose cumulative probability exceeds it times the row's total.

    Same law as ``torch.multinomial(probs, 1)``, but it needs one random number per row where
    ``multinomial`` draws one per vocabulary entry (a fifth of a CPU decoding step at V=49152).
    A token of probability 0 is never drawn: its cumulative sum equals its predecessor's."""
    cumulative = probs.double().cumsum(-1)
    chosen = torch.searchsorted(cumulative, uniforms.to(cumulative.device)[:, None] * cumulative[:, -1:],
                                right=True)[:, 0]
    return chosen.clamp_(max=probs.shape[-1] - 1)  # u * total rounds up to total: odds about 2**-53


def _next_tokens(logits, temperature, top_p, min_p, uniforms):
    if temperature == 0:
        return logits.argmax(-1)
    return draw_tokens(warp_logits(logits, temperature, top_p, min_p).softmax(-1), uniforms)


class _PreallocatedLayer(DynamicLayer):
    """A cache layer whose keys/values live in a buffer sized for the whole generation.

    ``DynamicLayer`` concatenates at every step, copying the whole cache each time (a quarter of
    a CPU decoding step); this one writes the new position into place and hands attention a
    view of the filled part."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int):
        super().__init__()
        self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
        self.length = keys.shape[-2]
        self._key_buffer = keys.new_empty(*keys.shape[:2], capacity, keys.shape[-1])
        self._value_buffer = values.new_empty(*values.shape[:2], capacity, values.shape[-1])
        self._key_buffer[:, :, :self.length] = keys
        self._value_buffer[:, :, :self.length] = values
        self._expose()

    def _expose(self):
        self.keys = self._key_buffer[:, :, :self.length]
        self.values = self._value_buffer[:, :, :self.length]

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        if end > self._key_buffer.shape[-2]:
            raise RuntimeError(f"the sampling cache holds {self._key_buffer.shape[-2]} positions; {end} were asked for.")
        self._key_buffer[:, :, self.length:end] = key_states
        self._value_buffer[:, :, self.length:end] = value_states
        self.length = end
        self._expose()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._key_buffer, self._value_buffer = self._key_buffer[indices], self._value_buffer[indices]
        self._expose()


def preallocated_cache(model, kvs: list, sources: list[int], new_tokens: int) -> tuple[DynamicCache, torch.Tensor]:
    """A cache for ``len(sources)`` rows, row ``r`` holding the keys/values of prompt ``kvs[sources[r]]``,
    with room for ``new_tokens`` more. Returns ``(cache, attention mask)``.

    Prompts of different lengths sit left-aligned: row ``r`` has its prompt, then a masked gap up
    to the longest prompt, then the generated positions, so every step writes the same column.
    The mask ``(rows, longest + new_tokens)`` is 1 on prompt and generated columns, 0 in gaps.
    Full-attention layers get a :class:`_PreallocatedLayer`; other layer kinds (sliding windows,
    as in Gemma-2) keep the library's own layer, which is correct for one prompt at a time
    (see :func:`_mixes_prompts`), only slower."""
    rows, cache = torch.as_tensor(sources, device=kvs[0][0][0].device), DynamicCache(config=model.config)
    lengths = [_prompt_length(kv) for kv in kvs]
    width = max(lengths[p] for p in set(sources))
    single = sources[0] if len(set(sources)) == 1 else None
    mask = torch.ones(len(sources), width + new_tokens, dtype=torch.long, device=kvs[0][0][0].device)
    for p in set(sources):
        mask[rows == p, lengths[p]:width] = 0
    for index, layer in enumerate(cache.layers):
        keys, values = (_rows_of(kvs, index, side, rows, single, lengths, width) for side in (0, 1))
        if type(layer) is DynamicLayer:
            cache.layers[index] = _PreallocatedLayer(keys, values, keys.shape[-2] + new_tokens)
        else:
            layer.update(keys, values)
    return cache, mask


def _prompt_length(kv) -> int:
    """Tokens of a prompt whose per-layer ``(keys, values)`` are ``kv``: the longest layer's
    (a sliding-window layer may keep only the last window of them)."""
    return max(keys.shape[-2] for keys, _ in kv)


def _rows_of(kvs, layer: int, side: int, rows: torch.Tensor, single: int | None, lengths: list[int],
             width: int) -> torch.Tensor:
    """Keys (``side`` 0) or values (1) of one layer for every row: its prompt's, zero in the gap
    (zeros, not garbage: a masked position gets weight 0, and 0 * NaN would still be NaN).
    ``single``: the one prompt every row continues, broadcast without a copy; ``None`` if several."""
    if single is not None:
        return kvs[single][layer][side].expand(len(rows), -1, -1, -1)
    first = kvs[0][layer][side]
    out = first.new_zeros(len(rows), first.shape[1], width, first.shape[-1])
    for p in rows.unique().tolist():
        out[rows == p, :, :lengths[p]] = kvs[p][layer][side][0]
    return out


def _mixes_prompts(model) -> bool:
    """Whether rows of different prompts may share a batch: only where every layer is a plain
    full-attention layer, so the gap between a short prompt and its answer is only masked."""
    return all(type(layer) is DynamicLayer for layer in DynamicCache(config=model.config).layers)


def _generate_batch(model, starts: list, sources: list[int], stop_ids, max_new_tokens, warp, uniforms):
    """Decode one batch of continuations; returns a list of token lists, one per row.

    starts: ``(last_logprobs, kv)`` of each prompt (:func:`~diffuse_utils.scoring.prompt_state`);
    sources: which prompt each row continues; uniforms (rows, max_new_tokens): row ``b``'s random
    number at each step. A row that draws a stop token leaves the batch (its cache rows are
    dropped), so later steps cost only the rows still writing: a few long answers no longer keep
    a whole batch running."""
    device = starts[0][0].device
    cache, mask = preallocated_cache(model, [kv for _, kv in starts], sources, max_new_tokens)
    width = mask.shape[1] - max_new_tokens
    lengths = torch.tensor([_prompt_length(starts[p][1]) for p in sources], device=device)
    logits = torch.stack([starts[p][0] for p in sources]) if len(set(sources)) > 1 else \
        starts[sources[0]][0].expand(len(sources), -1)
    rows, active = [[] for _ in sources], torch.arange(len(sources), device=device)
    for step in range(max_new_tokens):
        chosen = _next_tokens(logits, *warp, uniforms[active.cpu(), step])
        for row, token in zip(active.tolist(), chosen.tolist()):
            rows[row].append(token)
        going = ~torch.isin(chosen, stop_ids)
        if not going.any():
            break
        if not going.all():
            keep = going.nonzero()[:, 0]
            for layer in cache.layers:
                layer.batch_select_indices(keep)
            active, chosen, mask, lengths = active[keep], chosen[keep], mask[keep], lengths[keep]
        output = model(input_ids=chosen[:, None], past_key_values=cache, position_ids=(lengths + step)[:, None],
                       attention_mask=mask[:, :width + step + 1], use_cache=True)
        cache, logits = output.past_key_values, output.logits[:, -1]
    return rows


def _stop_tokens(tokenizer, device, stop_text: str | None = None) -> tuple[set[int], torch.Tensor]:
    """The ids that end an answer (end of turn, end of sequence) as a set, and as a tensor on ``device``
    with, given ``stop_text``, every token whose text contains it (a row stops there)."""
    stop = set(end_of_turn_ids(tokenizer)) | ({tokenizer.eos_token_id} - {None})
    halt = stop | (tokens_containing(tokenizer, stop_text) if stop_text else set())
    return stop, torch.tensor(sorted(halt), device=device)


def _decode(tokenizer, token_ids: list[int], stop_ids: set[int], stop_text: str | None = None) -> str:
    """Text up to the first stop token, and before the first ``stop_text``. Other special tokens stay
    visible (e.g. ``<|endoftext|>``): hiding them would make ``{1}<|endoftext|>`` look like ``{1}``."""
    cut = next((i for i, t in enumerate(token_ids) if t in stop_ids), len(token_ids))
    text = tokenizer.decode(token_ids[:cut], skip_special_tokens=False)
    return text.split(stop_text, 1)[0] if stop_text else text


@torch.no_grad()
def sample(model, tokenizer, prompt: str, n: int = 1000, temperature: float = 1.0, top_p: float = 1.0,
           min_p: float | None = None, max_new_tokens: int = 24, batch_size: int = 100, seed: int = 0,
           response_prefix: str = "", progress: bool = True, completion: bool = False,
           stop: str | None = None) -> list[str]:
    """Draw ``n`` responses to ``prompt`` (chat-formatted); each includes ``response_prefix``.

    completion: ``prompt`` is plain text the model continues (a base model; see ``Task.completion``).
    stop: text that ends a response (e.g. ``"."``): a response stops at it, and leaves it out.

    temperature: 0 means greedy. top_p, min_p: nucleus and min-p filtering (``None``/1.0: off).
    max_new_tokens: cut-off per response; batch_size: continuations decoded together (speed
    only: sample ``i`` is the same whatever the batch size, and whatever ``n`` above ``i``).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}.")
    return sample_prompts(model, tokenizer, [prompt], [n], temperature, top_p, min_p, max_new_tokens, batch_size,
                          seed, response_prefix, progress, completion, stop)[0]


@torch.no_grad()
def sample_prompts(model, tokenizer, prompts: list[str], counts: list[int], temperature: float = 1.0,
                   top_p: float = 1.0, min_p: float | None = None, max_new_tokens: int = 24, batch_size: int = 100,
                   seed: int = 0, response_prefix: str = "", progress: bool = True, completion: bool = False,
                   stop: str | None = None) -> list[list[str]]:
    """:func:`sample` for several prompts at once: ``counts[k]`` responses to ``prompts[k]``.

    Rows of different prompts share batches (a prompt shorter than another is followed by a
    masked gap), so 25 samples each of four prompts cost about one batch of 100, not four of
    25: a step reads every weight of the model whatever the batch, which dominates on a CPU
    when batches are small. Sample ``i`` of a prompt uses the same random numbers as in
    ``sample(prompt, ...)``, and the same prompts and counts give the same texts, but the gap
    changes the order of float additions in attention: where a random number falls within
    rounding of a cumulative probability (49,152 of them per step), the token differs, so a
    few percent of texts differ from one-at-a-time sampling (drawn from the same distribution).
    """
    if len(counts) != len(prompts):
        raise ValueError(f"give one count per prompt: {len(prompts)} prompts, {len(counts)} counts.")
    if min(counts, default=1) < 1 or batch_size < 1 or max_new_tokens < 1:
        raise ValueError(f"counts, batch_size and max_new_tokens must be >= 1; got {counts}, {batch_size}, "
                         f"{max_new_tokens}.")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy); got {temperature}.")
    device = model.get_input_embeddings().weight.device
    ends, stop_ids = _stop_tokens(tokenizer, device, stop)
    starts = [prompt_state(model, encode_prompt(tokenizer, prompt, response_prefix, completion)) for prompt in prompts]
    uniforms = [sample_uniforms(seed, n, max_new_tokens) for n in counts]
    work = [(p, i) for p, n in enumerate(counts) for i in range(n)]
    batches, mixing = [], _mixes_prompts(model)
    for p, i in work:  # consecutive rows, batch_size at most, one prompt per batch where prompts cannot mix
        if not batches or len(batches[-1]) == batch_size or (not mixing and batches[-1][0][0] != p):
            batches.append([])
        batches[-1].append((p, i))
    texts = [[] for _ in prompts]
    with tqdm(total=len(work), desc="sampling", unit="sample", disable=not progress) as bar:
        for batch in batches:
            used = sorted({p for p, _ in batch})
            local = {p: k for k, p in enumerate(used)}
            rows = _generate_batch(model, [starts[p] for p in used], [local[p] for p, _ in batch], stop_ids,
                                   max_new_tokens, (temperature, top_p, min_p),
                                   torch.stack([uniforms[p][i] for p, i in batch]))
            for (p, _), row in zip(batch, rows):
                texts[p].append(response_prefix + _decode(tokenizer, row, ends, stop))
            bar.update(len(batch))
    return texts


@torch.no_grad()
def greedy_completions(model, tokenizer, prompts: list[str], max_new_tokens: int = 24, batch_size: int = 32,
                       progress: bool = False) -> list[str]:
    """The greedy answer to each of ``prompts`` (chat-formatted), ``batch_size`` prompts decoded together.

    Prompts of different lengths are left-padded and masked, so each row sees only its own
    prompt; the answers are those of ``sample(..., n=1, temperature=0)`` one prompt at a time
    (up to float rounding), at a fraction of the cost: a batch of one keeps a CPU mostly idle.
    """
    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError(f"batch_size and max_new_tokens must be >= 1; got {batch_size}, {max_new_tokens}.")
    device = model.get_input_embeddings().weight.device
    stop, stop_ids = _stop_tokens(tokenizer, device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stop)
    encoded = [encode_prompt(tokenizer, prompt) for prompt in prompts]
    texts = []
    for start in tqdm(range(0, len(encoded), batch_size), desc="greedy", unit="batch", disable=not progress):
        chunk = encoded[start:start + batch_size]
        width = max(map(len, chunk))
        inputs = torch.tensor([[pad] * (width - len(ids)) + ids for ids in chunk], device=device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in chunk], device=device)
        rows, done, cache = [[] for _ in chunk], torch.zeros(len(chunk), dtype=torch.bool, device=device), None
        for _ in range(max_new_tokens):
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -inputs.shape[1]:]
            output = model(input_ids=inputs, attention_mask=mask, position_ids=positions, past_key_values=cache,
                           use_cache=True, logits_to_keep=1)
            cache, chosen = output.past_key_values, output.logits[:, -1].argmax(-1)
            for row, token, finished in zip(rows, chosen.tolist(), done.tolist()):
                if not finished:
                    row.append(token)
            done |= torch.isin(chosen, stop_ids)
            if done.all():
                break
            inputs, mask = chosen[:, None], torch.cat([mask, mask.new_ones(len(chunk), 1)], dim=1)
        texts += [_decode(tokenizer, row, stop) for row in rows]
    return texts
