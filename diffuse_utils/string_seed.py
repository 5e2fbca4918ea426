"""String Seed of Thought (Misaki and Akiba, 2026): a prompt that asks for randomness,
then arithmetic.

The model first writes a random string, then derives its answer from the string, and
only then answers. Our prompt states the rule where the valid answers can be listed: add
up the character codes of the string, take the remainder modulo the number of options,
and answer with the option at that position (counting from 0). Where they cannot be
listed (names, fruits, jobs), the model is asked to let the string choose. The string
goes between square brackets and the answer, as everywhere in this book, between curly
braces; a generation without a string, or without a braced answer after it, is a failure
and counts as an invalid answer.

Example::

    prompt = seed_prompt(RNG_PROMPT, options=[str(i) for i in range(1, 11)])
    parse_seeded("[ab1] so {7}")  # ('ab1', '7')
    implied_answer("ab1", ["1", "2", "3"])  # '2': (97 + 98 + 49) % 3 == 1, position 1
"""

from __future__ import annotations

import re

import numpy as np

from .answers import braced_spans

SEED_LENGTH = 8  # characters the model is asked to write
SEEDED_ANSWER_TOKENS = 64  # cut-off for the string, the working and the braced answer
_STRING = re.compile(r"\[([^\[\]\n]+)\]")

_START = (
    "\n\nBefore you answer, make your own randomness: write a random string of "
    "{length} letters and digits between square brackets. "
)
_RULE = (
    "Then derive your answer from the string: add up the character codes (ASCII) of "
    "its characters, divide the sum by {n} and take the remainder r; your answer is "
    "the option at position r, counting from 0, in this list: {options}. "
)
_OPEN = (
    "Then let the string choose your answer, so that a different string would "
    "give a different answer. "
)
_END = "Write the string first, then only the answer between curly braces."


def seed_prompt(
    prompt: str, options: list[str] | None = None, length: int = SEED_LENGTH
) -> str:
    """The task prompt with the String Seed of Thought instruction appended: the rule
    over ``options`` (in this order) when given, otherwise the open form."""
    if length < 1:
        raise ValueError(f"length must be at least 1 character, got {length}")
    if options is not None and len(options) < 2:
        raise ValueError(
            f"a rule needs at least two options to choose from, got {options!r}; "
            "pass options=None for the open form"
        )
    rule = (
        _OPEN
        if options is None
        else _RULE.format(n=len(options), options=", ".join(options))
    )
    return prompt + _START.format(length=length) + rule + _END


def parse_seeded(text: str) -> tuple[str | None, str | None]:
    """``(string, answer)``: the first ``[...]`` in ``text`` and the last ``{...}``
    after it (stripped).

    ``(None, None)`` without a string; ``(string, None)`` without a braced answer after
    it.
    Example: ``parse_seeded("{3} [x9] then {5}") -> ('x9', '5')``."""
    match = _STRING.search(text)
    if match is None:
        return None, None
    after = braced_spans(text[match.end() :])
    return match.group(1), (after[-1].strip() if after else None)


def implied_answer(string: str, options: list[str]) -> str:
    """The option the prompt's rule picks:
    ``options[sum of character codes % len(options)]``.

    Example: ``implied_answer("ab", ["x", "y", "z"]) -> 'x'``
    (97 + 98 = 195 = 65 * 3)."""
    if not options:
        raise ValueError("implied_answer needs at least one option")
    return options[sum(map(ord, string)) % len(options)]


def seeded_figures(texts: list[str], canonical, options: list[str] | None) -> dict:
    """What the generations say about the method: ``answers`` (one per text, ``None`` on
    failure), ``seed_failure`` (share of texts without a string or a braced answer after
    it) and, when the prompt stated the rule over ``options``, ``seed_consistency``: the
    share of valid answers equal to the answer their own string implies
    (``seed_checked`` of them), with ``seed_chance``, the share an answer that ignored
    its string would match on average (``1 / len(options)``)."""
    parsed = [parse_seeded(t) for t in texts]
    answers = [answer for _, answer in parsed]
    figures = {
        "answers": answers,
        "seed_failure": float(np.mean([a is None for a in answers])),
        "seed_consistency": np.nan,
        "seed_checked": 0,
        "seed_chance": np.nan,
    }
    if options is not None:
        checked = [
            (canonical(a), implied_answer(s, options))
            for s, a in parsed
            if a is not None and canonical(a) is not None
        ]
        figures.update(
            seed_checked=len(checked),
            seed_chance=1 / len(options),
            seed_consistency=float(np.mean([a == b for a, b in checked]))
            if checked
            else np.nan,
        )
    return figures
