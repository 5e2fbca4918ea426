"""What counts as a valid answer: braces, canonical forms, and the diversity of valid
answers.

Every chapter reads an answer the same way: the content of the first ``{...}`` of a
generation (:func:`parse_braces`), compared case-, space- and punctuation-insensitively
(:func:`normalize_answer`) with the valid answers, which map it to their canonical form
(:func:`canonicalizer`, or a task family's ``canonical``). A copy of a placeholder of
the prompt (``{name}`` in "like this: {name}") is not an answer, even where "Name" is a
name. :func:`answer_figures` gives the figures every chapter reports, under one set of
names.

Example::

    parse_braces("Sure! {7}.")  # '7'
    normalize_answer("  June 3rd. ")  # 'june 3'
    answer_figures(["7", "7", None, "x"], {"7", "3"})["valid_rate"]  # 0.5
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

import numpy as np

from .metrics import coverage, sample_entropy

_BRACES = re.compile(r"\{([^{}]*)\}")
# The figures of answer_figures, in order: one name per figure in every chapter.
FIGURES = (
    "n",
    "parsed_rate",
    "valid_rate",
    "entropy_valid",
    "coverage_valid",
    "entropy_parsed",
    "coverage_parsed",
    "outside_share",
    "answers",
    "rejected",
)


def braced_spans(text: str) -> list[str]:
    """Every ``{...}`` content in ``text``:
    ``braced_spans("like this: {name}.") -> ['name']``."""
    return _BRACES.findall(text)


def parse_braces(text: str) -> str | None:
    """Content of the first ``{...}`` in ``text``, stripped; ``None`` if there is none.

    Example: ``parse_braces("Sure! {7}.") -> "7"``; ``parse_braces("7") -> None``.
    """
    match = _BRACES.search(text)
    return match.group(1).strip() if match else None


def normalize_answer(text: str) -> str:
    """Case-, space- and punctuation-insensitive form used to compare answers.

    ``'  June 3rd. '`` -> ``'june 3'``; ``'Bosnia-and-Herzegovina'`` ->
    ``'bosnia and herzegovina'``.
    """
    text = text.strip().strip(".!'\"").replace("-", " ").replace("_", " ").casefold()
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", r"\1", text)
    return re.sub(r"\s+", " ", text)


def canonicalizer(valid_answers) -> Callable[[str | None], str | None]:
    """A function mapping an answer to its valid form in ``valid_answers`` (case,
    spacing and ordinal suffixes ignored), or to ``None``. Example:
    ``canonicalizer(['7'])(' 7 ') == '7'``."""
    lookup = {normalize_answer(v): v for v in valid_answers}
    return lambda answer: (
        None if answer is None else lookup.get(normalize_answer(answer))
    )


def valid_answers(parsed: list, canonical=None, prompt: str = "") -> list[str | None]:
    """The canonical form of each parsed answer, ``None`` where it is not valid.

    canonical: answer -> valid form or ``None`` (e.g. ``TaskFamily.canonical``), or a
    collection of valid answers (:func:`canonicalizer`), or ``None``: every parsed
    answer is valid as it is.
    prompt: its braced placeholders (``{name}``) are not answers."""
    if canonical is not None and not callable(canonical):
        canonical = canonicalizer(canonical)
    placeholders = {normalize_answer(p) for p in braced_spans(prompt)}
    return [
        None
        if a is None or normalize_answer(a) in placeholders
        else a
        if canonical is None
        else canonical(a)
        for a in parsed
    ]


def answer_figures(
    parsed: list,
    canonical=None,
    targets: Collection | None = None,
    prompt: str = "",
    lists: bool = True,
) -> dict:
    """Diversity of answers, junk excluded: the figures of :data:`FIGURES`.

    parsed: the answers (``None`` where nothing parsed); canonical, prompt: as
    :func:`valid_answers`;
    targets: the tuning targets. valid_rate: share of answers that are valid;
    entropy_valid, coverage_valid: over valid answers (canonical form); outside_share:
    share of valid answers that are not targets (NaN without targets); *_parsed: over
    everything parsed; answers, rejected: the valid answers, and the parsed answers that
    were not valid (left out with ``lists=False``: the numbers only, a row of a table).
    Example: ``answer_figures(["a", "A", "zz", None], ["a"])`` -> valid_rate 0.5,
    coverage_valid 1.
    """
    if len(parsed) == 0:
        raise ValueError("figures of no answers are undefined")
    valid = valid_answers(parsed, canonical, prompt)
    kept = [v for v in valid if v is not None]
    got = [a for a in parsed if a is not None]
    known = None if targets is None else set(targets)
    outside = (
        float(np.mean([v not in known for v in kept]))
        if kept and known is not None
        else np.nan
    )
    figures = {
        "n": len(parsed),
        "parsed_rate": len(got) / len(parsed),
        "valid_rate": len(kept) / len(parsed),
        "entropy_valid": sample_entropy(kept),
        "coverage_valid": coverage(kept),
        "entropy_parsed": sample_entropy(got),
        "coverage_parsed": coverage(got),
        "outside_share": outside,
    }
    if lists:
        figures.update(
            answers=kept,
            rejected=[a for a, v in zip(parsed, valid) if a is not None and v is None],
        )
    return figures


def text_figures(
    texts: list[str],
    canonical=None,
    targets: Collection | None = None,
    prompt: str = "",
    lists: bool = True,
) -> dict:
    """:func:`answer_figures` of generations, each read by :func:`parse_braces`."""
    return answer_figures(
        [parse_braces(t) for t in texts], canonical, targets, prompt, lists
    )
