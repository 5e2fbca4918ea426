"""Chapter 6's offline proxies of what tuning costs, base model against each adapter.

- :class:`CostProxies`: perplexity, the greedy capital-city probe, the exact knowledge
  probe and greedy answers to general instructions (:mod:`utility`), measured on one
  model and cached per adapter;
- :func:`cost_table`: each model's figures and their changes against the base model,
  in points with standard errors;
- :func:`cost_findings`: the numbers and sentences the chapter's prose quotes.

Example::

    costs = CostProxies("artifacts", tokenizer, capital_questions(60), 10_000, 10)
    rows = [costs.measure(model, "base")]
    with adapter(cached_tune("artifacts", model, tokenizer, [rng])) as tuned:
        rows.append(costs.measure(tuned, "tuned: RNG"))
    cost_table(rows, n_questions=60).loc["tuned: RNG", "QA named change (points)"]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .artifacts import cached_measure
from .metrics import proportion_change
from .utility import (
    greedy_answers,
    knowledge_accuracy,
    perplexity,
    qa_accuracy,
    reference_text,
)


@dataclass(frozen=True)
class CostProxies:
    """The proxies' settings. output_dir: the cache; questions: ``(country, capital)``
    pairs (``utility.capital_questions``); text_chars: characters of the reference text
    for perplexity; knowledge_choices: candidates per question of the exact knowledge
    probe, drawn with ``seed``."""

    output_dir: str
    tokenizer: object
    questions: list
    text_chars: int
    knowledge_choices: int
    seed: int = 0

    def measure(self, model, label: str) -> dict:
        """``model``'s figures under ``label`` (``"model"``): ``perplexity``, ``QA
        exact``, ``QA named``, ``knowledge``, ``braced answers`` (share of greedy QA
        answers holding a ``{``), ``greedy`` (answers to ``GENERAL_INSTRUCTIONS``) and
        ``qa_answers``; cached under ``output_dir/measures`` per adapter."""
        tokenizer, questions = self.tokenizer, self.questions

        def compute():
            qa = qa_accuracy(model, tokenizer, questions)
            known = knowledge_accuracy(
                model, tokenizer, questions, self.knowledge_choices, self.seed
            )["accuracy"]
            return {
                "perplexity": perplexity(
                    model, tokenizer, reference_text(self.text_chars)
                ),
                "QA exact": qa["exact"],
                "QA named": qa["named"],
                "knowledge": known,
                "braced answers": float(np.mean(["{" in a for a in qa["answers"]])),
                "greedy": greedy_answers(model, tokenizer),
                "qa_answers": qa["answers"],
            }

        measured = cached_measure(
            self.output_dir,
            model,
            "costs",
            compute,
            questions=[list(q) for q in questions],
            text_chars=self.text_chars,
            knowledge_choices=self.knowledge_choices,
            seed=self.seed,
        )
        return {"model": label, **measured}


def cost_table(rows: list[dict], n_questions: int) -> pd.DataFrame:
    """One row per model (``rows`` of :meth:`CostProxies.measure`, the base model's
    labelled ``"base"``) with the changes against it: ``perplexity change`` (relative),
    ``QA exact change (points)``, ``QA named change (points)`` and its ``s.e.``,
    ``knowledge change (points)`` and its ``s.e.`` (``metrics.proportion_change`` over
    ``n_questions``).
    Example: QA named 0.5 (base) and 0.75 over 4 questions: a change of +25 points,
    s.e. ``100 sqrt(0.75 * 0.25 / 4 + 0.5 * 0.5 / 4)`` = 33.07."""
    cost = pd.DataFrame(rows).set_index("model")
    base = cost.loc["base"]
    cost["perplexity change"] = cost["perplexity"] / base["perplexity"] - 1
    cost["QA exact change (points)"] = 100 * (cost["QA exact"] - base["QA exact"])
    cost["QA named change (points)"] = 100 * (cost["QA named"] - base["QA named"])
    cost["QA named change s.e."] = proportion_change(
        cost["QA named"], base["QA named"], n_questions
    )[1]
    knowledge = proportion_change(cost["knowledge"], base["knowledge"], n_questions)
    cost["knowledge change (points)"], cost["knowledge change s.e."] = knowledge
    return cost


def _changes(tuned: pd.DataFrame, what: str) -> str:
    """``"RNG +25 (s.e. 33); BABYNAMES -10 (s.e. 30)"``: each adapter's change of
    ``what`` (``"QA named"``, ``"knowledge"``) in points, with its standard error."""
    return "; ".join(
        f"{label.removeprefix('tuned: ')} {row[f'{what} change (points)']:+.0f} "
        f"(s.e. {row[f'{what} change s.e.']:.0f})"
        for label, row in tuned.iterrows()
    )


def _beyond_2se(tuned: pd.DataFrame, what: str) -> int:
    """How many adapters change ``what`` by more than two standard errors."""
    change = tuned[f"{what} change (points)"].abs()
    return int((change > 2 * tuned[f"{what} change s.e."]).sum())


def cost_findings(cost: pd.DataFrame) -> dict:
    """The values chapter 6 quotes from :func:`cost_table`'s ``cost``, by glue name:
    the base model's figures, the largest perplexity change, each adapter's changes
    (QA named, knowledge) as a sentence and how many exceed two standard errors, and,
    for the adapter with the largest greedy change (``qa_change_max_model``), its
    changes on both probes, their difference and its share of braced answers."""
    tuned = cost.drop(index="base")
    largest = tuned["QA named change (points)"].abs().idxmax()
    top = tuned.loc[largest]
    return {
        "ppl_base": cost.loc["base", "perplexity"],
        "ppl_change_max": cost["perplexity change"].abs().max(),
        "qa_base": cost.loc["base", "QA named"],
        "qa_change_max": top["QA named change (points)"],
        "qa_change_max_se": top["QA named change s.e."],
        "qa_change_max_model": largest,
        "qa_beyond_2se": _beyond_2se(tuned, "QA named"),
        "n_adapters": len(tuned),
        "qa_changes": _changes(tuned, "QA named"),
        "knowledge_base": cost.loc["base", "knowledge"],
        "knowledge_changes": _changes(tuned, "knowledge"),
        "knowledge_beyond_2se": _beyond_2se(tuned, "knowledge"),
        "largest_knowledge_change": top["knowledge change (points)"],
        "largest_format_part": top["QA named change (points)"]
        - top["knowledge change (points)"],
        "braced_base": cost.loc["base", "braced answers"],
        "braced_largest": top["braced answers"],
    }
