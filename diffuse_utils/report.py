"""Putting computed numbers into the book, and the paper's numbers beside them.

``glue`` stores a value for the prose (myst-nb's ``{glue:text}`` role) so numbers in
the text come from the computation; outside a book build (Colab) it is a no-op.
Numbers quoted from the paper live here, once, labelled as quotes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def glue(name: str, value, display: bool = False) -> None:
    """Store ``value`` under ``name`` for the rendered book (``myst_nb.glue``), if available.

    NumPy scalars are stored as plain Python numbers: their numpy-2 repr (``np.float64(2.3)``)
    cannot be formatted by ``{glue:text}`name:.2f```.
    """
    if isinstance(value, np.generic):
        value = value.item()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # e.g. on Colab without the book extras: the number is still printed by the cell
        return
    myst_glue(name, value, display=display)


def paper_table1() -> pd.DataFrame:
    """Table 1 of Zhang et al. (2024), quoted: entropy (nats) and coverage-1000."""
    rows = [("RNG", "Gemma-7B-it", 1.16, 2.28, 8, 10), ("RNG", "Llama-2-13B-chat", 1.07, 2.29, 7, 10),
            ("RNG", "Mistral-7B-Instruct", 1.88, 2.30, 9, 10),
            ("BABYNAMES", "Gemma-7B-it", 3.19, 5.69, 170, 442),
            ("BABYNAMES", "Llama-2-13B-chat", 3.24, 5.83, 129, 490),
            ("BABYNAMES", "Mistral-7B-Instruct", 4.02, 5.78, 225, 479)]
    table = pd.DataFrame(rows, columns=["task", "model", "entropy_baseline", "entropy_tuned",
                                        "coverage_baseline", "coverage_tuned"])
    natural = {"RNG": (2.30, 10), "BABYNAMES": (6.43, 714)}
    table["entropy_natural"] = table["task"].map(lambda t: natural[t][0])
    table["coverage_natural"] = table["task"].map(lambda t: natural[t][1])
    return table.assign(source="paper (quoted)")
