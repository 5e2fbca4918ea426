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


def paper_tables_5_6() -> pd.DataFrame:
    """Tables 5 and 6 of Zhang et al. (2024), quoted: mean coverage-1000 and entropy (nats) per task,
    baseline and leave-one-out (OOD) tuning. The paper's Mistral entropy column repeats Llama's
    (apparently a copy error in the paper); it is quoted as printed."""
    tasks = ["BABYNAMES", "COUNTRIES", "FRUITS", "DAYS AND DATES", "NUMBERS", "OCCUPATIONS"]
    coverage = {"Gemma-7B-it": [(170.0, 346.0), (23.3, 53.3), (20.5, 62.0), (18.5, 23.0), (16.0, 31.0), (51.7, 148.0)],
                "Llama-2-13B-chat": [(129.0, 426.0), (17.8, 43.0), (45.0, 60.5), (14.3, 22.5), (10.0, 31.9),
                                     (192.7, 313.3)],
                "Mistral-7B-Instruct": [(225.0, 493.0), (44.0, 71.5), (46.0, 64.0), (22.7, 22.5), (29.3, 32.0),
                                        (180.3, 305.0)]}
    entropy = {"Gemma-7B-it": [(3.20, 5.03), (1.58, 2.59), (1.96, 2.82), (1.82, 2.71), (1.28, 2.65), (1.59, 3.40)],
               "Llama-2-13B-chat": [(3.24, 5.57), (1.19, 2.73), (2.33, 3.28), (1.47, 2.81), (0.91, 2.70),
                                    (3.21, 4.68)],
               "Mistral-7B-Instruct": [(3.24, 5.57), (1.19, 2.73), (2.33, 3.28), (1.47, 2.81), (0.91, 2.70),
                                       (3.21, 4.68)]}
    rows = [(task, model, metric, base, ood) for metric, table in (("coverage", coverage), ("entropy", entropy))
            for model, values in table.items() for task, (base, ood) in zip(tasks, values)]
    return pd.DataFrame(rows, columns=["task", "model", "metric", "baseline", "OOD"]).assign(source="paper (quoted)")
