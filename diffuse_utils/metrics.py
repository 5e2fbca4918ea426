"""Diversity metrics of the paper (Section 2), in nats (which answers count:
``answers``).

Example::

    entropy([0.5, 0.5])  # 0.693... = ln 2
    coverage(["a", "b", "a"])  # 2
    kl_divergence([0.5, 0.5], [0.9, 0.1])  # 0.5108...
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd


def _probabilities(p) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if (
        p.ndim != 1
        or p.size == 0
        or (p < 0).any()
        or not np.isfinite(p).all()
        or p.sum() <= 0
    ):
        raise ValueError(
            "expected a non-empty 1-D array of finite, non-negative numbers with a "
            "positive sum"
        )
    return p / p.sum()


def entropy(p) -> float:
    """Shannon entropy ``-sum p log p`` in nats of a distribution (or counts,
    normalized)."""
    p = _probabilities(p)
    nonzero = p[p > 0]
    return float(-(nonzero * np.log(nonzero)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def empirical_distribution(samples: Iterable) -> pd.Series:
    """Relative frequency of each distinct sample, most frequent first (``None``
    dropped)."""
    counts = Counter(s for s in samples if s is not None)
    if not counts:
        return pd.Series(dtype=float, name="probability")
    series = pd.Series(counts, name="probability").sort_values(
        ascending=False, kind="stable"
    )
    return series / series.sum()


def sample_entropy(samples: Iterable) -> float:
    """Entropy (Eq. 3) of the empirical distribution of ``samples``; 0.0 when there are
    none."""
    dist = empirical_distribution(samples)
    return entropy(dist.to_numpy()) if len(dist) else 0.0


def coverage(samples: Iterable) -> int:
    """Coverage-N (Eq. 4): number of distinct non-``None`` samples among the N given."""
    return len({s for s in samples if s is not None})


def kl_divergence(p, q) -> float:
    """``KL(p || q) = sum p log(p / q)`` in nats; ``inf`` where ``q`` is 0 and ``p`` is
    not."""
    p, q = _probabilities(p), _probabilities(q)
    if p.shape != q.shape:
        raise ValueError(
            f"p and q must have the same length; got {p.size} and {q.size}"
        )
    support = p > 0
    if (q[support] == 0).any():
        return float("inf")
    return float((p[support] * np.log(p[support] / q[support])).sum())


def kl_from_samples(
    p_star: pd.Series, samples: Iterable, smoothing: float = 0.0
) -> float:
    """``KL(p* || p_hat)`` where ``p_hat`` counts ``samples`` over the index of
    ``p_star``.

    Samples outside the index are ignored (they are invalid outputs: report them with
    ``answers.answer_figures``). ``smoothing`` adds a pseudo-count to every target; with
    0, a target never sampled makes the estimate ``inf``.
    """
    counts = Counter(s for s in samples if s is not None)
    q = np.array([counts.get(t, 0) for t in p_star.index], dtype=float) + smoothing
    return kl_divergence(p_star.to_numpy(), q)


def unigram_diversity(texts: Iterable[str]) -> float:
    """Normalized unigram diversity (Fig. 4b): distinct lower-cased words / all
    words."""
    words = [w for text in texts for w in text.lower().split()]
    return len(set(words)) / len(words) if words else 0.0


def top_k_table(samples: Iterable, k: int = 5) -> pd.DataFrame:
    """The ``k`` most frequent samples with their counts and shares (ties: first seen
    first)."""
    counts = Counter(s for s in samples if s is not None)
    total = sum(counts.values())
    rows = [(value, count, count / total) for value, count in counts.most_common(k)]
    return pd.DataFrame(rows, columns=["value", "count", "share"])


def multinomial_band(
    probabilities, n: int, level: float = 0.95, draws: int = 4000, seed: int = 0
) -> pd.DataFrame:
    """Central ``level`` interval of each outcome's count in ``n`` draws from
    ``probabilities``.

    probabilities: Series over outcomes (may sum to < 1: the rest is "other").
    Simulated, so it is right for small expected counts where a normal approximation is
    not. Columns: expected, low, high.
    """
    p = np.asarray(probabilities, dtype=float)
    full = np.append(p, max(0.0, 1.0 - p.sum()))
    counts = np.random.default_rng(seed).multinomial(n, full / full.sum(), size=draws)[
        :, :-1
    ]
    tail = (1 - level) / 2
    return pd.DataFrame(
        {
            "expected": n * p,
            "low": np.quantile(counts, tail, axis=0),
            "high": np.quantile(counts, 1 - tail, axis=0),
        },
        index=getattr(probabilities, "index", None),
    )


def proportion_change(after, before, n: int):
    """A share measured again on the same ``n`` items (e.g. questions answered right):
    the change in points, ``100 (after - before)``, and its standard error as two
    independent proportions,
    ``100 sqrt(after (1 - after) / n + before (1 - before) / n)``. Numbers or arrays.
    Example: ``proportion_change(0.5, 0.6, 100) -> (-10.0, 6.93...)``."""
    after, before = np.asarray(after, float), np.asarray(before, float)
    change = 100 * (after - before)
    error = 100 * np.sqrt(after * (1 - after) / n + before * (1 - before) / n)
    return (float(change), float(error)) if change.ndim == 0 else (change, error)
