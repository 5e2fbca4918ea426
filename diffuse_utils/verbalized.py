"""Verbalized Sampling (Zhang et al., 2025): ask for ``k`` candidates with the
probability of each, one per line, then draw one answer from the list the model wrote.

Example::

    verbalized_prompt(RNG_PROMPT, k=5)  # the prompt + "... list 5 different ..."
    parse_verbalized("{3}: 0.2\n{7}: 0.8")  # {'3': 0.2, '7': 0.8}
    draw_from_lists(["{3}: 0.2\n{7}: 0.8", "no list"], seed=0)  # ['7', None]
"""

from __future__ import annotations

import re

import numpy as np

# cut-off for a Verbalized Sampling list: k lines of "{answer}: probability"
VERBALIZED_ANSWER_TOKENS = 96
VERBALIZED_INSTRUCTION = (
    "\n\nDo not answer just once. Instead, list {k} different possible answers, each "
    "with the probability that you would pick it, one per line, in this form:\n"
    "{{answer}}: probability"
)
_LINE = re.compile(r"\{([^{}]+)\}\s*[:=\-]?\s*\(?\s*([0-9]*\.?[0-9]+)\s*(%?)")


def verbalized_prompt(prompt: str, k: int = 5) -> str:
    """The task prompt with the Verbalized Sampling instruction appended (``k``
    candidates)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return prompt + VERBALIZED_INSTRUCTION.format(k=k)


def parse_verbalized(text: str) -> dict[str, float] | None:
    """Candidates and their probabilities, normalized to sum to 1; ``None`` if no line
    parses.

    Accepts ``{x}: 0.2``, ``{x} - 20%``, ``{x} (0.2)``. A candidate listed twice keeps
    the sum. Probabilities that are all zero become uniform over the candidates.
    """
    weights: dict[str, float] = {}
    for answer, number, percent in _LINE.findall(text):
        value = float(number) / (100 if percent else 1)
        weights[answer.strip()] = weights.get(answer.strip(), 0.0) + value
    if not weights:
        return None
    total = sum(weights.values())
    return {
        a: (w / total if total > 0 else 1 / len(weights)) for a, w in weights.items()
    }


def draw_from_lists(texts: list[str], seed: int = 0) -> list[str | None]:
    """One answer per generated list, drawn from the list's own probabilities (``None``:
    no list)."""
    rng = np.random.default_rng(seed)
    answers = []
    for text in texts:
        candidates = parse_verbalized(text)
        if candidates is None:
            answers.append(None)
            continue
        names = list(candidates)
        answers.append(
            names[rng.choice(len(names), p=np.array([candidates[n] for n in names]))]
        )
    return answers


def verbalized_distribution(texts: list[str], canonical) -> dict[str, float]:
    """The distribution Verbalized Sampling draws from, given these lists: the mean over
    lists of each list's probabilities, on valid answers only (``canonical(answer)`` ->
    valid form or None). A list that does not parse contributes its whole mass to
    "invalid" (missing from the result)."""
    mass: dict[str, float] = {}
    for text in texts:
        for answer, p in (parse_verbalized(text) or {}).items():
            valid = canonical(answer)
            if valid is not None:
                mass[valid] = mass.get(valid, 0.0) + p / len(texts)
    return mass
