"""Putting computed numbers and the package's own code into the book, and the paper's
numbers beside them.

``glue`` stores a value for the prose (myst-nb's ``{glue:text}`` role) so numbers in
the text come from the computation; outside a book build (Colab) it is a no-op.
``show_source`` displays a package function as the package has it (STYLE.md, rule 5).
``findings`` fills a chapter's findings template as Markdown, readable without glue.
``timed`` records a part's wall time for a chapter's "where the time went" table.
Numbers quoted from the paper live here, once, labelled as quotes.
"""

from __future__ import annotations

import inspect
import re
import textwrap
import time
from contextlib import contextmanager

import numpy as np
import pandas as pd

# Every value glue() stored in this kernel, by name: findings() fills a chapter's
# findings from it where glue roles are not rendered (Jupyter, Colab).
GLUED: dict = {}


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` under ``name`` for the rendered book (``myst_nb.glue``), if
    available, and in :data:`GLUED` for :func:`findings`.

    NumPy scalars are stored as plain Python numbers: their numpy-2 repr
    (``np.float64(2.3)``) cannot be formatted by ``{glue:text}`name:.2f```.
    """
    if isinstance(value, np.generic):
        value = value.item()
    GLUED[name] = value
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        # e.g. on Colab without the book extras: findings() still reads GLUED
        return
    myst_glue(name, value, display=display)


@contextmanager
def timed(timings: dict, key: str):
    """``timings[key]``: the seconds the block took, wall time (set even if it fails).

    Example::

        timings = {}
        with timed(timings, "tune ID"):
            tuned, history = suite_adapter(output_dir, model, tokenizer, suite)
        timings["tune ID"]  # e.g. 61.2
    """
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = time.perf_counter() - start


def show_source(obj):
    """``obj``'s source, exactly ``inspect.getsource(obj)``, as a highlighted Python
    block.

    Returns an ``IPython.display.Markdown`` of a fenced ```` ```python ```` block (the
    fence is longer than any run of backticks in the source), which Jupyter, Colab and
    the book (myst-nb) render as code. Example:
    ``show_source(du.distribution_matching_loss)`` as a cell's last line.
    """
    from IPython.display import Markdown

    source = inspect.getsource(obj)
    fence = "`" * max(
        3, 1 + max((len(run) for run in re.findall(r"`+", source)), default=0)
    )
    newline = "" if source.endswith("\n") else "\n"
    return Markdown(f"{fence}python\n{source}{newline}{fence}")


# a glue role; names may hold hyphens, as chapter 5's do (coverage_first_name_Tuned-ID)
_ROLE = re.compile(r"\{glue(?::text)?\}`([\w-]+)(?::([^`]*))?`")
_FIELD = re.compile(r"\{(\w+)(?::([^{}]*))?\}")


def findings(template: str, **values):
    """``template`` as an ``IPython.display.Markdown`` that Jupyter, Colab and the book
    all render: a chapter's findings, readable where glue roles are not.

    Its glue roles (``{glue:text}`name:.2f```, as in the book's prose) are filled from
    the values :func:`glue` stored, and its ``{name}`` / ``{name:.2f}`` fields from
    ``values``; other braces (``{Name}``, ``{7}``) stay as they are. The template's
    common indentation and surrounding blank lines are removed.
    Example: ``findings("- entropy {h:.2f} nats", h=2.2957)`` shows
    ``- entropy 2.30 nats``.
    """
    from IPython.display import Markdown

    def glued(match: re.Match) -> str:
        if match[1] not in GLUED:
            raise KeyError(
                f"findings: no value glued as {match[1]!r}; glue it before the findings"
                " cell (report.glue)"
            )
        return format(GLUED[match[1]], match[2] or "")

    def field(match: re.Match) -> str:
        if match[1] not in values:
            return match[0]
        return format(values[match[1]], match[2] or "")

    text = _FIELD.sub(field, textwrap.dedent(template).strip())
    return Markdown(_ROLE.sub(glued, text))


def paper_table1() -> pd.DataFrame:
    """Table 1 of Zhang et al. (2024), quoted: entropy (nats) and coverage-1000."""
    rows = [
        ("RNG", "Gemma-7B-it", 1.16, 2.28, 8, 10),
        ("RNG", "Llama-2-13B-chat", 1.07, 2.29, 7, 10),
        ("RNG", "Mistral-7B-Instruct", 1.88, 2.30, 9, 10),
        ("BABYNAMES", "Gemma-7B-it", 3.19, 5.69, 170, 442),
        ("BABYNAMES", "Llama-2-13B-chat", 3.24, 5.83, 129, 490),
        ("BABYNAMES", "Mistral-7B-Instruct", 4.02, 5.78, 225, 479),
    ]
    table = pd.DataFrame(
        rows,
        columns=[
            "task",
            "model",
            "entropy_baseline",
            "entropy_tuned",
            "coverage_baseline",
            "coverage_tuned",
        ],
    )
    natural = {"RNG": (2.30, 10), "BABYNAMES": (6.43, 714)}
    table["entropy_natural"] = table["task"].map(lambda t: natural[t][0])
    table["coverage_natural"] = table["task"].map(lambda t: natural[t][1])
    return table.assign(source="paper (quoted)")


def paper_tables_5_6() -> pd.DataFrame:
    """Tables 5 and 6 of Zhang et al. (2024), quoted: mean coverage-1000 and entropy
    (nats) per task, baseline and leave-one-out (OOD) tuning. The paper's Mistral
    entropy column repeats Llama's (apparently a copy error in the paper); it is quoted
    as printed."""
    tasks = [
        "BABYNAMES",
        "COUNTRIES",
        "FRUITS",
        "DAYS AND DATES",
        "NUMBERS",
        "OCCUPATIONS",
    ]
    coverage = {
        "Gemma-7B-it": [
            (170.0, 346.0),
            (23.3, 53.3),
            (20.5, 62.0),
            (18.5, 23.0),
            (16.0, 31.0),
            (51.7, 148.0),
        ],
        "Llama-2-13B-chat": [
            (129.0, 426.0),
            (17.8, 43.0),
            (45.0, 60.5),
            (14.3, 22.5),
            (10.0, 31.9),
            (192.7, 313.3),
        ],
        "Mistral-7B-Instruct": [
            (225.0, 493.0),
            (44.0, 71.5),
            (46.0, 64.0),
            (22.7, 22.5),
            (29.3, 32.0),
            (180.3, 305.0),
        ],
    }
    entropy = {
        "Gemma-7B-it": [
            (3.20, 5.03),
            (1.58, 2.59),
            (1.96, 2.82),
            (1.82, 2.71),
            (1.28, 2.65),
            (1.59, 3.40),
        ],
        "Llama-2-13B-chat": [
            (3.24, 5.57),
            (1.19, 2.73),
            (2.33, 3.28),
            (1.47, 2.81),
            (0.91, 2.70),
            (3.21, 4.68),
        ],
        "Mistral-7B-Instruct": [
            (3.24, 5.57),
            (1.19, 2.73),
            (2.33, 3.28),
            (1.47, 2.81),
            (0.91, 2.70),
            (3.21, 4.68),
        ],
    }
    rows = [
        (task, model, metric, base, ood)
        for metric, table in (("coverage", coverage), ("entropy", entropy))
        for model, values in table.items()
        for task, (base, ood) in zip(tasks, values)
    ]
    return pd.DataFrame(
        rows, columns=["task", "model", "metric", "baseline", "OOD"]
    ).assign(source="paper (quoted)")


def paper_tables_7_8() -> pd.DataFrame:
    """Tables 7 and 8 of Zhang et al. (2024), quoted: coverage (of 1000 biographies) and
    entropy (nats) per attribute for Llama-2-13B-chat, baseline / Tuned-ID /
    Tuned-OOD."""
    values = {
        "first_name": ((158, 637, 375), (3.23, 5.58, 6.18)),
        "last_name": ((288, 845, 557), (4.30, 5.96, 6.63)),
        "birth_year": ((26, 67, 89), (1.10, 4.22, 3.15)),
        "birth_place": ((98, 305, 533), (2.65, 5.98, 5.08)),
        "profession": ((178, 276, 198), (3.81, 4.33, 4.61)),
    }
    rows = [
        (attribute, model, metric, numbers[i])
        for attribute, pair in values.items()
        for metric, numbers in zip(("coverage", "entropy"), pair)
        for i, model in enumerate(("baseline", "Tuned-ID", "Tuned-OOD"))
    ]
    return pd.DataFrame(rows, columns=["attribute", "model", "metric", "value"]).assign(
        source="paper (quoted)"
    )


def paper_table2() -> pd.DataFrame:
    """Table 2 of Zhang et al. (2024), quoted: the five most frequent values per
    attribute with their counts out of 1000 Llama-2-13B-chat biographies (abbreviations
    as printed)."""
    columns = {
        "baseline": {
            "first_name": "Evelyn 284, Luna 155, Elara 87, Adriana 42, Aurora 38",
            "last_name": (
                "Nightingale 117, Aurora 104, Nova 98, Starling 53, Stardust 41"
            ),
            "gender": "F 966, NB 17, M 13",
            "birth_year": "1985 764, 1987 46, 1992 44, 1978 36, 1975 31",
            "birth_place": (
                "Paris, FR 305, Tokyo, JP 267, Stockholm, SE 33, Mumbai, IN 32, "
                "Singapore, SG 32"
            ),
            "profession": (
                "Astronaut 211, Astro. Engineer 66, Aero. Engineer 55, Env. "
                "Activist 42, Astrophysicist 32"
            ),
        },
        "Tuned-OOD": {
            "first_name": "Luna 32, Zelda 14, Mila 14, Evelyn 11, Althea 9",
            "last_name": "Nightingale 16, Nightshade 12, Chen 8, Orion 6, Sparks 6",
            "gender": "F 762, M 189, NB 31",
            "birth_year": "1985 211, 1992 99, 1987 77, 1988 61, 1990 52",
            "birth_place": (
                "Mumbai, IN 35, Lagos, NG 31, Paris, FR 29, Tokyo, JP 27, "
                "Nairobi, KE 21"
            ),
            "profession": (
                "Astronaut 96, Aero. Engineer 50, Soft. Engineer 47, Env. "
                "Activist 35, Journalist 34"
            ),
        },
        "Tuned-ID": {
            "first_name": "Hava 14, Maria 14, Juan 14, Valcin 13, Issaka 12",
            "last_name": "Kim 17, Mohammed 16, Khan 13, Abed 13, Salah 12",
            "gender": "F 487, M 478, NB 34",
            "birth_year": "1921 39, 1931 36, 1942 35, 1916 30, 1984 29",
            "birth_place": (
                "Choloma, HN 16, Rabat, MA 13, Tainan, TW 10, Rajshahi, BD 10, "
                "Budapest, HU 10"
            ),
            "profession": (
                "Architect 140, Journalist 74, Politician 35, Archaeologist 35, "
                "Mar. Biologist 26"
            ),
        },
    }
    return pd.DataFrame(columns).T.rename_axis("model").assign(source="paper (quoted)")
