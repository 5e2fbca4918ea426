"""Sampling many short answers from one prompt, reproducibly, and parsing braces.

The prompt is prefilled once; each batch of ``batch_size`` continuations starts
from a broadcast copy of its key/value cache. A single seeded
``torch.Generator`` drives every draw, so the same seed gives the same samples.

Example::

    texts = sample(model, tokenizer, RNG_PROMPT, n=1000, seed=0)   # ['{7}', '{3}', ...]
    [parse_braces(t) for t in texts]                               # ['7', '3', ...]
"""
from __future__ import annotations

import re

import torch
from tqdm.auto import tqdm

from .decoding import warp_logits  # noqa: F401  (re-exported: sampling.warp_logits)
from .encoding import encode_prompt, end_of_turn_ids
from .scoring import expanded_cache, prompt_state

_BRACES = re.compile(r"\{([^{}]*)\}")
# How texts are decoded; part of cache keys, so cached generations are redone when it changes.
DECODING = "cut at the first stop token; other special tokens kept as text; finished rows leave the batch"


def braced_spans(text: str) -> list[str]:
    """Every ``{...}`` content in ``text``: ``braced_spans("like this: {name}.") -> ['name']``."""
    return _BRACES.findall(text)


def parse_braces(text: str) -> str | None:
    """Content of the first ``{...}`` in ``text``, stripped; ``None`` if there is none.

    Example: ``parse_braces("Sure! {7}.") -> "7"``; ``parse_braces("7") -> None``.
    """
    match = _BRACES.search(text)
    return match.group(1).strip() if match else None


def _next_tokens(logits, temperature, top_p, min_p, generator):
    if temperature == 0:
        return logits.argmax(-1)
    probs = warp_logits(logits, temperature, top_p, min_p).softmax(-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _generate_batch(model, last_logprobs, kv, batch, stop_ids, max_new_tokens, warp, generator):
    """Decode ``batch`` continuations from the prompt state; returns a list of token lists.

    A row that draws a stop token leaves the batch (its cache rows are dropped), so later steps
    cost only the rows still writing: a few long answers no longer keep a whole batch running."""
    device = last_logprobs.device
    cache, prompt_len = expanded_cache(model, kv, batch), kv[0][0].shape[-2]
    logits = last_logprobs.expand(batch, -1)
    rows, active = [[] for _ in range(batch)], torch.arange(batch, device=device)
    for step in range(max_new_tokens):
        chosen = _next_tokens(logits, *warp, generator)
        for row, token in zip(active.tolist(), chosen.tolist()):
            rows[row].append(token)
        going = ~torch.isin(chosen, stop_ids)
        if not going.any():
            break
        if not going.all():
            keep = going.nonzero()[:, 0]
            for layer in cache.layers:
                layer.batch_select_indices(keep)
            active, chosen = active[keep], chosen[keep]
        positions = torch.full((len(active), 1), prompt_len + step, device=device)
        output = model(input_ids=chosen[:, None], past_key_values=cache, position_ids=positions,
                       attention_mask=torch.ones(len(active), prompt_len + step + 1, device=device, dtype=torch.long),
                       use_cache=True)
        cache, logits = output.past_key_values, output.logits[:, -1]
    return rows


def _decode(tokenizer, token_ids: list[int], stop_ids: set[int]) -> str:
    """Text up to the first stop token. Other special tokens stay visible (e.g. ``<|endoftext|>``):
    hiding them would make ``{1}<|endoftext|>`` look like the clean answer ``{1}``."""
    cut = next((i for i, t in enumerate(token_ids) if t in stop_ids), len(token_ids))
    return tokenizer.decode(token_ids[:cut], skip_special_tokens=False)


@torch.no_grad()
def sample(model, tokenizer, prompt: str, n: int = 1000, temperature: float = 1.0, top_p: float = 1.0,
           min_p: float | None = None, max_new_tokens: int = 24, batch_size: int = 100, seed: int = 0,
           response_prefix: str = "", progress: bool = True) -> list[str]:
    """Draw ``n`` responses to ``prompt`` (chat-formatted); each includes ``response_prefix``.

    temperature: 0 means greedy. top_p, min_p: nucleus and min-p filtering (``None``/1.0: off).
    max_new_tokens: cut-off per response; batch_size: continuations decoded together.
    """
    if n < 1 or batch_size < 1 or max_new_tokens < 1:
        raise ValueError(f"n, batch_size and max_new_tokens must be >= 1; got {n}, {batch_size}, {max_new_tokens}.")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy); got {temperature}.")
    device = model.get_input_embeddings().weight.device
    stop = set(end_of_turn_ids(tokenizer)) | ({tokenizer.eos_token_id} - {None})
    stop_ids = torch.tensor(sorted(stop), device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    last_logprobs, kv = prompt_state(model, encode_prompt(tokenizer, prompt, response_prefix))
    texts = []
    with tqdm(total=n, desc="sampling", unit="sample", disable=not progress) as bar:
        while len(texts) < n:
            batch = min(batch_size, n - len(texts))
            rows = _generate_batch(model, last_logprobs, kv, batch, stop_ids, max_new_tokens,
                                   (temperature, top_p, min_p), generator)
            texts += [response_prefix + _decode(tokenizer, row, stop) for row in rows]
            bar.update(batch)
    return texts
