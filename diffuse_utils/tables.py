"""Result tables that fit the book's text column (STYLE.md, rule 12).

A chapter keeps its frames as computed, with the column names its glue cells read
(``valid_rate``, ``entropy_valid``), and shows them through :func:`readable`: the same
numbers, with every label in words. A label with spaces can wrap in a browser; a
``snake_case`` one cannot, and eight of them are wider than the 790 px column. Tables
with more than about seven columns are transposed or split where a chapter shows them.

Example::

    readable(pd.DataFrame({"valid_rate": [0.5], "entropy_valid": [1.2]}))
    # columns "valid rate", "entropy (valid)"
"""

from __future__ import annotations

import pandas as pd

# Labels of the package's figures (answers.FIGURES, unseen's) where "_" -> " " alone
# would not read well; every other label only has its underscores made spaces.
LABELS = {
    "parsed_rate": "parsed rate",
    "valid_rate": "valid rate",
    "entropy_valid": "entropy (valid)",
    "coverage_valid": "coverage (valid)",
    "entropy_parsed": "entropy (parsed)",
    "coverage_parsed": "coverage (parsed)",
    "outside_share": "share outside the targets",
    "kl": "KL",
    "well_formed": "well-formed",
    "copies_example": "copies the example",
    # unseen's figures (chapter 8)
    "held_out_share": "held-out share",
    "share_ratio": "held-out ratio",
    "held_out_mass": "held-out mass",
    "sampled_ratio": "held-out ratio (sampled)",
    "sampled_e_ratio": "E ratio (sampled)",
    "knowledge_change": "knowledge change (points)",
    # the utility probes (utility.UtilityProbe, as the training monitor records them)
    "qa_named": "capital QA (named)",
    "qa_exact": "capital QA (exact)",
    "utility/qa_named": "capital QA (named)",
    "utility/qa_exact": "capital QA (exact)",
    "utility/knowledge": "knowledge (exact probe)",
    "utility/perplexity": "perplexity",
    "sem": "standard error",
}


def label(name):
    """``name`` in words: its entry of :data:`LABELS`, else with its underscores made
    spaces; a label that is not a string is returned as it is.
    Example: ``label("first_name_coverage")`` -> ``"first name coverage"``.
    """
    if not isinstance(name, str):
        return name
    return LABELS.get(name, name.replace("_", " "))


MISSING = "–"  # a cell with no value, as the page shows it (not "NaN")


def readable(
    frame: pd.DataFrame, drop_empty: bool = False, digits: int | None = None
) -> pd.DataFrame:
    """``frame`` with its row and column labels, and the names of its axes, in words
    (:func:`label`, on every level of a MultiIndex); the numbers are not touched unless
    ``digits`` is given.

    drop_empty: also leave out the columns that hold no number (all NaN), such as
    ``outside_share`` of answers measured without targets.
    digits: show the numbers as :func:`rounded` does (text: for display only).
    Example: ``readable(rng_table, digits=3).T``: one column per setting.
    """
    shown = frame.dropna(axis=1, how="all") if drop_empty else frame
    shown = shown.rename(index=label, columns=label)
    shown = shown.rename_axis(
        index=[label(n) for n in shown.index.names],
        columns=[label(n) for n in shown.columns.names],
    )
    return shown if digits is None else rounded(shown, digits)


def rounded(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """``frame`` as text for the page: every number column with ``digits`` decimals, a
    column of counts (integers, or whole floats past 1: counts a missing value made
    floats) with none, and a missing value as :data:`MISSING` where pandas prints
    ``NaN``. Other columns keep their values. For display only: the result holds
    strings.
    Example: a count column ``[3.0, NaN]`` -> ``["3", "–"]``; ``[0.5, 0.25]`` at 2
    digits -> ``["0.50", "0.25"]``.
    """
    if digits < 0:
        raise ValueError(f"digits is {digits}: give 0 or more decimals to show")
    out = frame.astype(object)
    for i in range(frame.shape[1]):  # by position: labels may repeat
        values = frame.iloc[:, i]
        number = pd.api.types.is_numeric_dtype(values)
        if pd.api.types.is_bool_dtype(values) or not number:
            out.iloc[:, i] = values.astype(object).where(values.notna(), MISSING)
            continue
        present = values.dropna()
        # counts: integers, or floats (a missing value made them so) that are whole and
        # reach past 1; a share of only 0s and 1s keeps its decimals
        whole = pd.api.types.is_integer_dtype(values) or bool(
            (present == present.round()).all() and present.abs().max() > 1
        )
        fmt = "{:.0f}" if whole else f"{{:.{digits}f}}"
        out.iloc[:, i] = [MISSING if pd.isna(v) else fmt.format(v) for v in values]
    return out
