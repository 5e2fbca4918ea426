"""The settings of a draw, and how a next-token distribution is shaped before sampling.

:class:`SampleSettings` holds everything that determines a set of generations (its
:meth:`~SampleSettings.key` is the generation cache's key); each kind of answer's length
is defined once here (``SHORT_ANSWER_TOKENS``, ``LONG_ANSWER_TOKENS``,
``BIOGRAPHY_TOKENS``). :func:`warp_logits` (temperature, min-p, top-p) serves both the
sampler and exact scoring, so the probability that
:func:`~diffuse_utils.scoring.target_logprobs` assigns under a decoding setting is
exactly the probability that :func:`~diffuse_utils.sampling.sample` draws that answer
with it.

Example::

    settings = SampleSettings(temperature=2.0, min_p=0.1)  # short answers, seed 0
    # {'seed': 1, 'max_new_tokens': 16, 'temperature': 2.0, 'min_p': 0.1}
    sample_settings(settings, seed=1).key()
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from .encoding import end_of_turn_ids, tokens_containing

# a braced short answer ({7}, {Olivia}): about 5 tokens, room to spare
SHORT_ANSWER_TOKENS = 16
# a few sentences: greedy answers to open instructions (utility probes)
LONG_ANSWER_TOKENS = 60
BIOGRAPHY_TOKENS = 112  # chapter 5's biography: six braced fields and a few sentences


@dataclass(frozen=True)
class SampleSettings:
    """Everything that determines a draw of generations, and so the generation cache's
    key.

    max_new_tokens: cut-off per response (default: a short answer,
        ``SHORT_ANSWER_TOKENS``).
    temperature: 0 means greedy; top_p, min_p: nucleus and min-p filtering (1.0,
        ``None``: off).
    seed: the uniforms that drive the draws (``sampling.sample_uniforms``).
    response_prefix: text the answer starts with (e.g. ``"{"``); every response includes
        it.
    completion: the prompt is plain text the model continues (a base model;
        ``Task.completion``).
    stop: a text that ends a response (e.g. ``"."``), left out of it.
    closing_fields: the end of turn is forbidden until this many ``}`` have been written
        (the prefix's count), so a model that would stop after one braced field writes
        six.

    Speed-only settings (batch size, progress bars) are not here: they never change a
    text.
    Example: ``SampleSettings(max_new_tokens=BIOGRAPHY_TOKENS, response_prefix="{")``.
    """

    max_new_tokens: int = SHORT_ANSWER_TOKENS
    temperature: float = 1.0
    top_p: float = 1.0
    min_p: float | None = None
    seed: int = 0
    response_prefix: str = ""
    completion: bool = False
    stop: str | None = None
    closing_fields: int | None = None

    def __post_init__(self):
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(
                "max_new_tokens must be a positive integer; got "
                f"{self.max_new_tokens!r}."
            )
        if self.temperature < 0:
            raise ValueError(
                f"temperature must be >= 0 (0 = greedy); got {self.temperature}."
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (1: off); got {self.top_p}.")
        if self.min_p is not None and not 0 <= self.min_p <= 1:
            raise ValueError(
                f"min_p must be in [0, 1] or None (off); got {self.min_p}."
            )
        if self.closing_fields is not None and self.closing_fields < 0:
            raise ValueError(
                f"closing_fields must be >= 0 or None; got {self.closing_fields}."
            )
        if self.closing_fields == 0:  # nothing held: the same draw as no hold at all
            object.__setattr__(self, "closing_fields", None)

    @property
    def warp(self) -> dict:
        """The settings that shape each next-token distribution
        (:func:`warp_logits`)."""
        return dict(temperature=self.temperature, top_p=self.top_p, min_p=self.min_p)

    def key(self) -> dict:
        """The cache key's part: ``seed`` and ``max_new_tokens`` always, the other
        settings only where they differ from their defaults (keys made before a setting
        existed still match)."""
        default = SampleSettings()
        options = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("seed", "max_new_tokens")
            and getattr(self, f.name) != getattr(default, f.name)
        }
        return dict(seed=self.seed, max_new_tokens=self.max_new_tokens, **options)


def sample_settings(
    settings: SampleSettings | None = None, **overrides
) -> SampleSettings:
    """``settings`` (default: :class:`SampleSettings`) with ``overrides`` replaced;
    unknown names are refused with the list of known ones."""
    names = [f.name for f in fields(SampleSettings)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ValueError(
            f"unknown sampling settings {unknown}; SampleSettings has {names} "
            "(batch_size and progress are arguments of the function: they change "
            "speed only)"
        )
    return replace(settings or SampleSettings(), **overrides)


def warp_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_p: float = 1.0,
    min_p: float | None = None,
) -> torch.Tensor:
    """Apply temperature, then min-p, then top-p (nucleus) filtering. Shape kept
    ``(B, V)``.

    Filtered tokens get ``-inf``; the most likely token always survives. A temperature
    of 1 divides nothing (``x / 1.0 == x`` exactly), so it is skipped: a pass over
    ``(B, V)`` saved per step.
    """
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    if min_p is not None:
        probs = logits.softmax(-1)
        logits = logits.masked_fill(
            probs < min_p * probs.max(-1, keepdim=True).values, float("-inf")
        )
    if top_p < 1.0:
        sorted_logits, order = logits.sort(-1, descending=True)
        before = sorted_logits.softmax(-1).cumsum(-1) - sorted_logits.softmax(-1)
        drop_sorted = before >= top_p
        logits = logits.masked_fill(
            drop_sorted.scatter(-1, order, drop_sorted), float("-inf")
        )
    return logits


def warped_logprobs(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_p: float = 1.0,
    min_p: float | None = None,
) -> torch.Tensor:
    """Log-probabilities after :func:`warp_logits`, any leading shape ``(..., V)``;
    filtered tokens get ``-inf``."""
    if top_p >= 1.0 and min_p is None:
        logits = logits.float()
        return (logits if temperature == 1.0 else logits / temperature).log_softmax(-1)
    flat = logits.reshape(-1, logits.shape[-1])
    return (
        warp_logits(flat, temperature, top_p, min_p)
        .log_softmax(-1)
        .reshape(logits.shape)
    )


def answer_ends(tokenizer) -> set[int]:
    """The ids that end an answer: the chat template's end of turn and the
    end-of-sequence token."""
    return set(end_of_turn_ids(tokenizer)) | ({tokenizer.eos_token_id} - {None})


def halting_ids(
    tokenizer, device, stop: str | None = None
) -> tuple[set[int], torch.Tensor]:
    """The ids that end an answer (end of turn, end of sequence) as a set, and as a
    tensor on ``device`` with, given the stop text ``stop``, every token whose text
    contains it."""
    ends = answer_ends(tokenizer)
    halt = ends | (tokens_containing(tokenizer, stop) if stop else set())
    return ends, torch.tensor(sorted(halt), device=device)


def decode_answer(
    tokenizer, token_ids: list[int], end_ids: set[int], stop: str | None = None
) -> str:
    """Text up to the first answer-ending id, and before the first stop text ``stop``.
    Other special tokens stay visible (e.g. ``<|endoftext|>``): hiding them would make
    ``{1}<|endoftext|>`` look like ``{1}``."""
    cut = next((i for i, t in enumerate(token_ids) if t in end_ids), len(token_ids))
    text = tokenizer.decode(token_ids[:cut], skip_special_tokens=False)
    return text.split(stop, 1)[0] if stop else text
