"""Synthetic biographies (the paper's Section 6): the prompt, parsing, per-attribute
diversity.

The prompt of Table 3 asks for six fields, each between braces: name, gender, date of
birth, place of birth, profession, one sentence of accomplishments. A generation is
*well-formed* when it has at least six braced fields. Fields are read in order (the
first six at most), and each attribute is checked on its own (a gender must be
Female/Male/Non-binary, a birth date must contain a year, a place must read "City,
Country"). Nothing is dropped silently: every generation keeps a row, with ``problem``
saying why it is not well-formed, and a malformed one still gives the attributes of the
fields it has.

The Tuned-ID model of Section 6.2 is tuned on :func:`biography_task`: ~210 openings of a
biography (the five categorical fields, then ``{`` for the accomplishments the model
writes itself), built by ``scripts/build_tasks.py`` from faker names, GeoNames cities
and BLS occupation titles.

Example::

    text = (
        "{Ada Obi}\\n{Female}\\n{May 2, 1931}\\n"
        "{Lagos, Nigeria}\\n{Nurse}\\n{Led clinics.}"
    )
    bios = parse_biographies([text])
    # ['Ada', 1931, 'Lagos, Nigeria']
    bios.loc[0, ["first_name", "birth_year", "birth_place"]].tolist()
    attribute_summary(bios)  # coverage and entropy per attribute
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from .answers import braced_spans, normalize_answer
from .metrics import coverage, sample_entropy, unigram_diversity
from .tasks import Task

# Appendix B.2, Table 3, verbatim.
BIOGRAPHY_PROMPT = (
    "Generate a random biography sketch of a fictional, notable person. Output name, "
    "gender, time of birth, place of birth, profession and accomplishments "
    "individually between two braces and generate nothing else. Please follow the "
    "format below.\n\n{First name and last name}\n{Gender - Female/Male/Non-binary}\n"
    "{Date and year of birth}\n{City and country of birth}\n{Profession}\n"
    "{One sentence description of accomplishments}\n\nExample\n\n"
    "{David Hippocampus}\n{Male}\n{June 30, 1960}\n{Cambridge, Massachusetts, USA}\n"
    "{Neuroscientist}\n{Revolutionized cognitive science by elucidating the "
    "mechanisms underlying memory formation and retrieval through groundbreaking "
    "research and innovative methodologies, advancing our understanding of the human "
    "brain's intricacies}"
)
# the prompt's own example: repeating it is the model's bias, not a new person
EXAMPLE_NAME = "David Hippocampus"
FIELDS = (
    "name",
    "gender",
    "birth_date",
    "birth_place",
    "profession",
    "accomplishments",
)
ATTRIBUTES = (
    "first_name",
    "last_name",
    "gender",
    "birth_year",
    "birth_place",
    "profession",
)
GENDERS = {
    "female": "Female",
    "f": "Female",
    "woman": "Female",
    "male": "Male",
    "m": "Male",
    "man": "Male",
    "non binary": "Non-binary",
    "nonbinary": "Non-binary",
    "nb": "Non-binary",
}
_YEAR = re.compile(r"\b(1\d{3}|20\d{2})\b")
TASK_FILE = Path(__file__).parent / "tasks" / "biographies.yaml"


def _tidy(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().strip(".").strip()


def canonical_gender(text: str) -> str | None:
    """``'female'`` -> ``'Female'``; ``None`` for anything but Female/Male/Non-binary
    (and short forms)."""
    return GENDERS.get(normalize_answer(text))


def birth_year(text: str) -> int | None:
    """The last four-digit year (1000-2099) in a date: ``'June 30, 1960'`` ->
    ``1960``."""
    years = _YEAR.findall(text)
    return int(years[-1]) if years else None


def split_place(text: str) -> tuple[str | None, str | None]:
    """``'Cambridge, Massachusetts, USA'`` -> ``('Cambridge', 'USA')``: first and last
    comma-separated parts."""
    parts = [_tidy(p) for p in text.split(",") if _tidy(p)]
    return (
        (parts[0], parts[-1]) if len(parts) > 1 else (parts[0] if parts else None, None)
    )


def parse_biography(text: str) -> dict:
    """One generation -> its fields and attributes (``None`` where missing or invalid).

    Fields are the braced spans in order; ``problem`` is ``None`` for a well-formed
    biography (six or more), else why not (``'no braced fields'``, ``'3 of 6 fields'``).
    A malformed one still gives the attributes of the fields it has: one that stops
    after ``{Ada Obi}`` has a name.
    """
    spans = [_tidy(s) for s in braced_spans(text)]
    row = {
        "text": text,
        "fields": len(spans),
        **dict.fromkeys(FIELDS + ATTRIBUTES + ("city", "country")),
    }
    row["problem"] = (
        None
        if len(spans) >= len(FIELDS)
        else "no braced fields"
        if not spans
        else f"{len(spans)} of {len(FIELDS)} fields"
    )
    row.update(zip(FIELDS, [s or None for s in spans[: len(FIELDS)]]))
    words = (row["name"] or "").split()
    city, country = split_place(row["birth_place"] or "")
    # a place is "City, Country"
    city, country = (city, country) if city and country else (None, None)
    row.update(
        first_name=words[0] if words else None,
        last_name=words[-1] if len(words) > 1 else None,
        gender=canonical_gender(row["gender"] or ""),
        birth_year=birth_year(row["birth_date"] or ""),
        city=city,
        country=country,
        birth_place=f"{city}, {country}" if city else None,
    )
    return row


def parse_biographies(texts: list[str]) -> pd.DataFrame:
    """:func:`parse_biography` of each text: one row per generation, none dropped."""
    frame = pd.DataFrame([parse_biography(t) for t in texts])
    frame["birth_year"] = frame["birth_year"].astype("Int64")
    frame["copies_example"] = frame["name"].fillna("").map(
        normalize_answer
    ) == normalize_answer(EXAMPLE_NAME)
    return frame


def _keys(values: pd.Series) -> pd.Series:
    """Comparable form of attribute values (case, spacing, punctuation ignored); missing
    dropped."""
    return values.dropna().astype(str).map(normalize_answer)


def attribute_summary(bios: pd.DataFrame, attributes=ATTRIBUTES) -> pd.DataFrame:
    """Per attribute: how many generations gave a valid value, coverage (distinct values
    among all generations, Eq. 4) and entropy (Eq. 3) of those values, case and spacing
    ignored."""
    rows = {
        a: {
            "answered": int(bios[a].notna().sum()),
            "coverage": coverage(_keys(bios[a])),
            "entropy": sample_entropy(_keys(bios[a])),
        }
        for a in attributes
    }
    return pd.DataFrame(rows).T.astype({"answered": int, "coverage": int})


def top_values(values: pd.Series, k: int = 5) -> pd.DataFrame:
    """The ``k`` most frequent values (case and spacing ignored), each shown in its most
    common spelling, with counts: a row of the paper's Table 2."""
    present = values.dropna().astype(str)
    keys = present.map(normalize_answer)
    counts = keys.value_counts(sort=True).head(k)
    shown = [present[keys == key].value_counts().index[0] for key in counts.index]
    return pd.DataFrame({"value": shown, "count": counts.to_numpy()})


def unigram_diversity_at(texts: list[str], size: int, seed: int = 0) -> float:
    """:func:`~diffuse_utils.metrics.unigram_diversity` of ``size`` texts drawn without
    replacement.

    The ratio of distinct to all words falls as text is added, so models are compared on
    the same number of texts; ``size`` must not exceed ``len(texts)``.
    """
    if not 0 < size <= len(texts):
        raise ValueError(
            f"size must be between 1 and the {len(texts)} texts given; got {size}"
        )
    picks = np.random.default_rng(seed).choice(len(texts), size=size, replace=False)
    return unigram_diversity([texts[i] for i in sorted(picks)])


def biography_text(row) -> str:
    """The six fields of a parsed biography joined by spaces (what 'whole biography'
    diversity counts)."""
    # a DataFrame row holds NaN for a missing field
    return " ".join(str(row[f]) for f in FIELDS if pd.notna(row[f]))


def biography_task(response_prefix: str = "") -> Task:
    """The Tuned-ID targets: openings of a biography with balanced categorical
    attributes.

    Each target is the five categorical fields and the ``{`` that opens the
    accomplishments, without an end of turn (``end_of_turn=False``): tuning shapes who
    the person is and leaves the accomplishments to the model. ``response_prefix``: the
    same prefix used when sampling.
    """
    return replace(Task.load(TASK_FILE), response_prefix=response_prefix)
