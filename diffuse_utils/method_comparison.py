"""Chapter 6's comparison: every way of asking for diverse answers, run on every probe.

- :class:`Comparison`: what every method's run shares (the cache, the base model, how
  many generations each probe gets), :meth:`Comparison.run` one method on a list of
  probes (``baselines.compare_probes``) and :meth:`Comparison.adapter` a tuned model;
- :func:`tuned_group`: which adapter answers a probe;
- :func:`failure_rates`: how often each prompting method wrote no usable text;
- :func:`best_alternative`: what the untuned methods of highest entropy reach.

Example::

    compare = Comparison("artifacts", model, tokenizer, n_samples=60, suite_samples=10)
    compare.counts(probes)  # [60, 60, 10, 10, ...]: RNG and BABYNAMES first
    rows = compare.run(model, Method.decoding("temperature 1"), probes)
    with compare.adapter([rng], tuning) as tuned:
        rows += compare.run(tuned, Method("tuned"), [probes[0]])
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .adapters import adapter
from .artifacts import cached_tune
from .baselines import Method, Probe, compare_probes
from .tries import TOKENS_PER_PASS

PAPER_TASKS = ("RNG", "BABYNAMES")  # probes on the prompts chapter 3 tuned on
SIX_TASKS = "six tasks (ID)"  # the group chapter 4's six-task (ID) adapter answers
# failure columns of compare_probes' rows, by the prompting method they belong to
FAILURES = {
    "Verbalized Sampling: no list": ("Verbalized Sampling", "list_failure"),
    "String Seed of Thought: no string and answer": (
        "String Seed of Thought",
        "seed_failure",
    ),
}


def tuned_group(probe: Probe) -> str:
    """The adapter that answers ``probe``: chapter 3's own for RNG and BABYNAMES,
    chapter 4's six-task (ID) adapter for every held-out six-task prompt.
    Example: ``tuned_group(probes[0])`` -> ``"RNG"``; a COUNTRIES probe ->
    ``"six tasks (ID)"``."""
    return probe.task if probe.task in PAPER_TASKS else SIX_TASKS


@dataclass(frozen=True)
class Comparison:
    """What every method's run shares. output_dir: the cache of adapters and
    generations; model: the base model (adapters are put into it and taken out again);
    n_samples: generations of each RNG and BABYNAMES probe; suite_samples: of each
    six-task probe; batch_size, tokens_per_pass: speed and memory only."""

    output_dir: str
    model: object
    tokenizer: object
    n_samples: int
    suite_samples: int
    batch_size: int = 100
    tokens_per_pass: int = TOKENS_PER_PASS

    def counts(self, probes: list[Probe]) -> list[int]:
        """Generations of each probe: ``n_samples`` for RNG and BABYNAMES,
        ``suite_samples`` for the rest."""
        return [
            self.n_samples if p.task in PAPER_TASKS else self.suite_samples
            for p in probes
        ]

    def run(self, model, method: Method, probes: list[Probe]) -> list[dict]:
        """One row of figures per probe: ``method`` on ``probes``, sampled from
        ``model`` (the base model or a tuned one) together and cached."""
        return compare_probes(
            self.output_dir,
            model,
            self.tokenizer,
            probes,
            method,
            self.counts(probes),
            batch_size=self.batch_size,
            tokens_per_pass=self.tokens_per_pass,
        )

    def adapter(self, tasks: list, settings):
        """``with compare.adapter(tasks, settings) as tuned:`` the adapter tuned on
        ``tasks`` with ``settings`` (loaded when cached), taken out of the base model
        on leaving the block."""
        return adapter(
            cached_tune(
                self.output_dir,
                self.model,
                self.tokenizer,
                tasks,
                settings,
                tokens_per_pass=self.tokens_per_pass,
            )
        )


def failure_rates(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per task (rows, in the order they first appear), the share of Verbalized
    Sampling's lists that did not parse and of String Seed of Thought's generations
    with no string and braced answer after it (columns of :data:`FAILURES`).
    ``comparison``: the rows of :meth:`Comparison.run`, one per method and probe.
    Example: two RNG rows of Verbalized Sampling with ``list_failure`` 0.5 and 1.0
    give 0.75 under ``"Verbalized Sampling: no list"`` for RNG."""
    columns = {}
    for label, (method, column) in FAILURES.items():
        rows = comparison[comparison["method"] == method]
        columns[label] = rows.groupby("task", sort=False)[column].mean()
    return pd.DataFrame(columns)


def _rates(values: pd.Series) -> str:
    """Valid rates as a reader can tell them apart: ``0.65``, or ``0.000 to 0.004``
    (three decimals where the largest is under 0.05)."""
    low, high = values.min(), values.max()
    digits = 2 if high >= 0.05 else 3
    if f"{low:.{digits}f}" == f"{high:.{digits}f}":
        return f"{high:.{digits}f}"
    return f"{low:.{digits}f} to {high:.{digits}f}"


def best_alternative(means: pd.DataFrame) -> dict:
    """What the untuned methods of highest mean entropy over valid answers reach (ties
    kept together): ``method`` (their names, or "all 7, tied"), ``entropy``, ``valid``
    (the highest of their valid rates), ``valid_text`` (their rates as text) and a
    ``sentence``. ``means``: per method (index, ``"tuned"`` among them),
    ``entropy_valid`` and ``valid_rate``.
    Example: temperature 1 alone highest, at 0.03 nats, gives the sentence "The
    alternative with the highest entropy, temperature 1, reaches 0.03 nats at a valid
    rate of 0.004."."""
    others = means.drop(index="tuned")
    top = others["entropy_valid"].max()
    tied = others[others["entropy_valid"] >= top - 1e-9]
    rates = _rates(tied["valid_rate"])
    every = len(tied) == len(others)
    if len(tied) == 1:
        sentence = (
            f"The alternative with the highest entropy, {tied.index[0]}, reaches "
            f"{top:.2f} nats at a valid rate of {rates}."
        )
    elif top == 0:
        which = "all" if every else f"{len(tied)} of"
        sentence = (
            f"No alternative gives two different valid answers to one probe: "
            f"{which} {len(others)} score 0 nats, at valid rates of {rates}."
        )
    else:
        sentence = (
            f"No alternative stands out: {len(tied)} of {len(others)} tie at the "
            f"highest entropy, {top:.2f} nats, at valid rates of {rates}."
        )
    names = (
        f"all {len(others)}, tied" if every and len(tied) > 1 else "; ".join(tied.index)
    )
    return {
        "method": names,
        "entropy": top,
        "valid": tied["valid_rate"].max(),
        "valid_text": rates,
        "sentence": sentence,
    }
