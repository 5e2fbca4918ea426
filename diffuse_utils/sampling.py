"""Sampling many short answers from one prompt, reproducibly.

The prompt is prefilled once; each batch of ``batch_size`` continuations starts
from a copy of its key/value cache in a buffer sized for the whole generation, so a
decoding step writes one position instead of re-concatenating the cache. Tokens are
drawn by inverse-CDF sampling from a table of uniform numbers made once from the
seed, one row per sample: sample ``i`` depends only on the seed, ``i`` and the settings,
so the same seed gives the same samples whatever ``batch_size``, and the first ``n``
samples of a larger draw are the draw of ``n`` (caches serve them, see
``artifacts.cached_generations``). ``sample_prompts`` fills batches with rows of several
prompts, for when each prompt needs fewer samples than a batch holds.

Example::

    texts = sample(model, tokenizer, RNG_PROMPT, n=1000, seed=0)  # ['{7}', '{3}', ...]
    [answers.parse_braces(t) for t in texts]  # ['7', '3', ...]
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

# sampling.warp_logits and the answer lengths are re-exported
from .decoding import (  # noqa: F401
    LONG_ANSWER_TOKENS,
    SHORT_ANSWER_TOKENS,
    SampleSettings,
    answer_ends,
    decode_answer,
    halting_ids,
    sample_settings,
    warp_logits,
)
from .encoding import encode_prompt, vocabulary_texts
from .kvcache import leave_batch, mixes_prompts, preallocated_cache, prompt_length
from .scoring import prompt_state

# How texts are decoded; part of cache keys, so cached generations are redone when it
# changes.
DECODING = (
    "cut at the first stop token; other special tokens kept as text; finished rows "
    "leave the batch; inverse-CDF draws from per-sample uniforms"
)


def sample_uniforms(seed: int, n: int, max_new_tokens: int) -> torch.Tensor:
    """The uniform numbers that drive ``n`` samples, ``(n, max_new_tokens)`` float64, on
    the CPU.

    Row ``i`` depends only on ``seed``, ``i`` and ``max_new_tokens`` (the CPU generator
    fills the table in order), so a sample does not depend on how many are drawn or how
    they are batched; made on the CPU so that a GPU run draws the same numbers."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, max_new_tokens, generator=generator, dtype=torch.float64)


def draw_tokens(
    probs: torch.Tensor, uniforms: torch.Tensor, block: int = 1024
) -> torch.Tensor:
    """One token per row of ``probs`` (B, V), by inverse-CDF sampling: ``uniforms[b]``
    in [0, 1) picks the first token whose cumulative probability exceeds it times the
    row's total.

    Same law as ``torch.multinomial(probs, 1)``, but it needs one random number per row
    where ``multinomial`` draws one per vocabulary entry. The vocabulary is cut into
    blocks of ``block`` tokens: float32 block totals, cumulated in float64, find the
    block; a float64 cumulative sum inside that block alone finds the token (a full
    float64 cumulative sum of ``(B, V)`` cost a tenth of a CPU decoding step). A token
    of probability 0 is never drawn.
    Example: ``draw_tokens(torch.tensor([[0.5, 0.0, 0.5]]), torch.tensor([0.6])) ->
    tensor([2])``.
    """
    rows, vocabulary = probs.shape
    padded = torch.nn.functional.pad(probs, (0, -vocabulary % block))
    blocks = padded.view(rows, -1, block)
    ends = blocks.sum(-1).double().cumsum(-1)  # (B, blocks)
    target = uniforms.to(ends.device)[:, None] * ends[:, -1:]
    chosen = torch.searchsorted(ends, target, right=True)
    chosen = chosen.clamp_(max=ends.shape[1] - 1)  # (B, 1)
    # (B, block)
    inside = blocks.gather(1, chosen[:, :, None].expand(-1, -1, block))[:, 0]
    start = torch.where(chosen > 0, ends.gather(1, (chosen - 1).clamp(min=0)), 0.0)
    cumulative = start + inside.double().cumsum(-1)
    offset = torch.searchsorted(cumulative, target, right=True)[:, 0]
    # past the block's end by rounding: its last token drawable
    last = (inside > 0).cumsum(-1).argmax(-1)
    token = chosen[:, 0] * block + torch.minimum(offset, last)
    return token.clamp_(max=vocabulary - 1)


def _next_tokens(logits, warp: dict, uniforms):
    if warp["temperature"] == 0:
        return logits.argmax(-1)
    return draw_tokens(warp_logits(logits, **warp).softmax(-1), uniforms)


class _Hold:
    """``SampleSettings.closing_fields``: the answer-ending ids are held back from a row
    until it has written ``fields`` closing braces (counted from the response
    prefix)."""

    def __init__(self, tokenizer, settings: SampleSettings, device):
        texts = vocabulary_texts(tokenizer)
        self.fields = settings.closing_fields
        self.start = settings.response_prefix.count("}")
        self.closes = torch.tensor([t.count("}") for t in texts], device=device)
        self.ends = torch.tensor(sorted(answer_ends(tokenizer)), device=device)
        self._ending = None  # (V,) bool: the ending ids, made at the logits' width once

    def mask(self, logits: torch.Tensor, closed: torch.Tensor) -> torch.Tensor:
        """``logits`` (B, V) with the ending ids at ``-inf`` in rows still short of the
        fields."""
        width = logits.shape[-1]
        if self._ending is None or len(self._ending) != width:
            positions = torch.arange(width, device=logits.device)
            self._ending = torch.isin(positions, self.ends)
        held = (closed < self.fields)[:, None] & self._ending[None]
        return logits.masked_fill(held, float("-inf"))

    def count(self, chosen: torch.Tensor) -> torch.Tensor:
        """The closing braces each chosen token writes."""
        return self.closes[chosen.clamp(max=len(self.closes) - 1)]


def _generate_batch(
    model, starts: list, sources: list[int], halt_ids, settings, uniforms, hold=None
):
    """Decode one batch of continuations; returns a list of token lists, one per row.

    starts: ``(last_logprobs, kv)`` of each prompt
    (:func:`~diffuse_utils.scoring.prompt_state`);
    sources: which prompt each row continues; halt_ids: the token ids that end a row;
    uniforms (rows, max_new_tokens): row ``b``'s random number at each step; hold: a
    :class:`_Hold` or ``None``. A row that draws a halting token leaves the batch (the
    last rows move into its place, see :func:`~diffuse_utils.kvcache.leave_batch`), so
    later steps cost only the rows still writing: a few long answers no longer keep a
    whole batch running.
    """
    device, new_tokens = starts[0][0].device, settings.max_new_tokens
    cache, mask = preallocated_cache(
        model, [kv for _, kv in starts], sources, new_tokens
    )
    width = mask.shape[1] - new_tokens
    lengths = torch.tensor(
        [prompt_length(starts[p][1]) for p in sources], device=device
    )
    if len(set(sources)) > 1:
        logits = torch.stack([starts[p][0] for p in sources])
    else:
        logits = starts[sources[0]][0].expand(len(sources), -1)
    rows, active = [[] for _ in sources], torch.arange(len(sources))
    closed = (
        None if hold is None else torch.full((len(sources),), hold.start, device=device)
    )
    for step in range(new_tokens):
        if hold is not None:
            logits = hold.mask(logits, closed)
        chosen = _next_tokens(logits, settings.warp, uniforms[active, step])
        for row, token in zip(active.tolist(), chosen.tolist()):
            rows[row].append(token)
        going = ~torch.isin(chosen, halt_ids)
        # no forward pass for a token never drawn
        if not going.any() or step == new_tokens - 1:
            break
        if hold is not None:
            closed = closed + hold.count(chosen)
        if not going.all():
            order = leave_batch(cache, going)
            active, chosen = active[order.cpu()], chosen[order]
            mask, lengths = mask[order], lengths[order]
            closed = None if closed is None else closed[order]
        output = model(
            input_ids=chosen[:, None],
            past_key_values=cache,
            position_ids=(lengths + step)[:, None],
            attention_mask=mask[:, : width + step + 1],
            use_cache=True,
        )
        cache, logits = output.past_key_values, output.logits[:, -1]
    return rows


@torch.no_grad()
def sample(
    model,
    tokenizer,
    prompt: str,
    n: int = 1000,
    settings: SampleSettings | None = None,
    *,
    batch_size: int = 100,
    progress: bool = True,
    **overrides,
) -> list[str]:
    """Draw ``n`` responses to ``prompt`` (chat-formatted unless ``completion``) under
    ``settings`` (a :class:`SampleSettings`, default: short answers at temperature 1,
    seed 0) with ``overrides`` replaced (``temperature=0``, ``max_new_tokens=112``,
    ...); each response includes the settings' ``response_prefix``.

    batch_size: continuations decoded together (speed only: sample ``i`` is the same
    whatever the batch size, and whatever ``n`` above ``i``).
    Example: ``sample(model, tokenizer, RNG_PROMPT, n=5, temperature=2.0)``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}.")
    settings = sample_settings(settings, **overrides)
    return sample_prompts(
        model,
        tokenizer,
        [prompt],
        [n],
        settings,
        batch_size=batch_size,
        progress=progress,
    )[0]


def _batches(
    counts: list[int], batch_size: int, mixing: bool
) -> list[list[tuple[int, int]]]:
    """Rows ``(prompt, sample)`` in order, ``batch_size`` at most a batch, one prompt a
    batch where prompts cannot share one (``kvcache.mixes_prompts``)."""
    batches = []
    for p, n in enumerate(counts):
        for i in range(n):
            if (
                not batches
                or len(batches[-1]) == batch_size
                or (not mixing and batches[-1][0][0] != p)
            ):
                batches.append([])
            batches[-1].append((p, i))
    return batches


@torch.no_grad()
def sample_prompts(
    model,
    tokenizer,
    prompts: list[str],
    counts: list[int],
    settings: SampleSettings | None = None,
    *,
    batch_size: int = 100,
    progress: bool = True,
    **overrides,
) -> list[list[str]]:
    """:func:`sample` for several prompts at once: ``counts[k]`` responses to
    ``prompts[k]``.

    Rows of different prompts share batches (a prompt shorter than another is followed
    by a masked gap), so 25 samples each of four prompts cost about one batch of 100,
    not four of 25: a step reads every weight of the model whatever the batch, which
    dominates on a CPU when batches are small. Sample ``i`` of a prompt uses the same
    random numbers as in ``sample(prompt, ...)``, and the same prompts and counts give
    the same texts, but the gap changes the order of float additions in attention: where
    a random number falls within rounding of a cumulative probability (49,152 of them
    per step), the token differs, so a few percent of texts differ from one-at-a-time
    sampling (drawn from the same distribution).
    """
    settings = sample_settings(settings, **overrides)
    if len(counts) != len(prompts):
        raise ValueError(
            f"give one count per prompt: {len(prompts)} prompts, {len(counts)} counts."
        )
    if min(counts, default=1) < 1 or batch_size < 1:
        raise ValueError(
            f"counts and batch_size must be >= 1; got {counts}, {batch_size}."
        )
    device = model.get_input_embeddings().weight.device
    ends, halt_ids = halting_ids(tokenizer, device, settings.stop)
    hold = _Hold(tokenizer, settings, device) if settings.closing_fields else None
    prefix, completion = settings.response_prefix, settings.completion
    starts = [
        prompt_state(model, encode_prompt(tokenizer, prompt, prefix, completion))
        for prompt in prompts
    ]
    uniforms = [
        sample_uniforms(settings.seed, n, settings.max_new_tokens) for n in counts
    ]
    texts = [[] for _ in prompts]
    bar = tqdm(total=sum(counts), desc="sampling", unit="sample", disable=not progress)
    with bar:
        for batch in _batches(counts, batch_size, mixes_prompts(model)):
            used = sorted({p for p, _ in batch})
            local = {p: k for k, p in enumerate(used)}
            draws = torch.stack([uniforms[p][i] for p, i in batch])
            rows = _generate_batch(
                model,
                [starts[p] for p in used],
                [local[p] for p, _ in batch],
                halt_ids,
                settings,
                draws,
                hold,
            )
            for (p, _), row in zip(batch, rows):
                texts[p].append(
                    prefix + decode_answer(tokenizer, row, ends, settings.stop)
                )
            bar.update(len(batch))
    return texts
