"""Exact diagnostics of a tuning run: where the loss goes, and whether the model learns
the list.

For one prompt ``x`` of a task with targets ``T`` and target distribution ``p*``, let
``q(y) = p_theta(y|x)``, ``M = sum_{y in T} q(y)`` (the *valid mass*) and
``q_T = q / M`` (the model renormalized over the targets). The loss of chapter 2 splits
exactly into three terms:

    L = -sum_y p*(y) log q(y) = H(p*) + KL(p* || q_T) - log M

``-log M`` falls as the model learns the *format* (answer with a target, then stop);
``KL`` falls as it learns the *shape* of ``p*`` among the targets. For open sets
(names), the *memorization ratio* compares the mean probability of valid answers held
out of the targets with the targets' mean: near its starting value the model learns the
kind of answer, falling towards 0 it learns the list.

Example::

    monitor = TrainingMonitor(tokenizer, [names_task], every=1)
    model, history = tune(
        model, tokenizer, [names_task], monitor=monitor, passes=40, lr=5e-4
    )
    history[
        [
            "update",
            "L/babynames",
            "KL/babynames",
            "neg_log_mass/babynames",
            "memorization/babynames",
        ]
    ]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .encoding import encode_task
from .metrics import entropy
from .packing import packed_logprobs
from .tasks import Task
from .tries import TOKENS_PER_PASS, Query

TERMS = ("L", "H", "KL", "neg_log_mass")


def decompose(logprobs: np.ndarray, p_star: np.ndarray) -> dict[str, float]:
    """``L``, ``H`` (of ``p*``), ``KL(p* || q_T)`` and ``-log M`` from the targets'
    exact log-probs ``(T,)``. ``L = H + KL + neg_log_mass`` holds exactly (up to float
    rounding)."""
    logprobs, p_star = np.asarray(logprobs, float), np.asarray(p_star, float)
    log_mass = np.logaddexp.reduce(logprobs)
    support = p_star > 0
    kl = float(
        np.sum(
            p_star[support] * (np.log(p_star[support]) - (logprobs[support] - log_mass))
        )
    )
    return {
        "L": float(-np.sum(p_star[support] * logprobs[support])),
        "H": entropy(p_star),
        "KL": kl,
        "neg_log_mass": float(-log_mass),
    }


def held_out_answers(task: Task) -> Task | None:
    """The task's valid answers that are not targets (``metadata['held_out']``), as a
    task with the same prompts and answer form; ``None`` when the task has none."""
    held_out = task.metadata.get("held_out")
    if not held_out:
        return None
    return Task(
        f"{task.name}-held-out",
        task.prompts,
        list(held_out),
        braces=task.braces,
        response_prefix=task.response_prefix,
        end_of_turn=task.end_of_turn,
    )


def memorization_ratio(
    target_logprobs: np.ndarray, held_out_logprobs: np.ndarray
) -> float:
    """Mean probability of a held-out valid answer over the mean probability of a
    target."""
    return float(np.mean(np.exp(held_out_logprobs)) / np.mean(np.exp(target_logprobs)))


def diagnostic_queries(tokenizer, task: Task) -> list[Query]:
    """What :func:`task_diagnostics` scores: every prompt with the targets, then every
    prompt with the held-out answers (when the task has them). Encoded once; a monitor
    reuses them."""
    encoded, held = encode_task(tokenizer, task), held_out_answers(task)
    queries = [Query(prompt, encoded.target_ids) for prompt in encoded.prompt_ids]
    if held is not None:
        held_ids = encode_task(tokenizer, held).target_ids
        queries += [Query(prompt, held_ids) for prompt in encoded.prompt_ids]
    return queries


def task_diagnostics(
    model,
    tokenizer,
    task: Task,
    tokens_per_pass: int = TOKENS_PER_PASS,
    queries: list[Query] | None = None,
) -> dict[str, float]:
    """:func:`decompose` (and the memorization ratio when the task has held-out answers)
    for every prompt of ``task``, averaged over its prompts. Keys ``L``, ``H``, ``KL``,
    ``neg_log_mass`` and ``memorization``. ``queries``: :func:`diagnostic_queries` of
    the task, if already made. Run it under ``torch.no_grad()``."""
    queries = diagnostic_queries(tokenizer, task) if queries is None else queries
    scores = [
        s.cpu().numpy().astype(float)
        for s in packed_logprobs(model, queries, tokens_per_pass=tokens_per_pass)
    ]
    n = len(task.prompts)
    rows = [decompose(scores[j], task.probabilities) for j in range(n)]
    if len(scores) > n:
        for j, row in enumerate(rows):
            row["memorization"] = memorization_ratio(scores[j], scores[n + j])
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


@dataclass
class TrainingMonitor:
    """What :func:`~diffuse_utils.tuning.tune` measures while it trains, as history
    columns.

    tasks: the tasks whose exact diagnostics are recorded (``<term>/<task>`` columns:
    ``L``, ``H``, ``KL``, ``neg_log_mass``, ``memorization``), before every ``every``-th
    update and at the end.
    utility: an optional :class:`~diffuse_utils.utility.UtilityProbe`, measured before
    the updates in ``utility_at`` and at the end (``utility/<name>`` columns); it costs
    seconds to minutes.
    """

    tokenizer: object
    tasks: list[Task]
    every: int = 1
    utility: object = None
    utility_at: tuple = (0,)
    tokens_per_pass: int = TOKENS_PER_PASS
    _queries: list | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.every, int) or self.every < 1:
            raise ValueError(
                "every must be a positive integer (measure every k updates), got "
                f"{self.every!r}"
            )

    def due(self, update: int) -> bool:
        return update % self.every == 0

    def measure(self, model, update: int, final: bool = False) -> dict[str, float]:
        """The columns for the model's current state (call in eval mode, under
        ``torch.no_grad()``)."""
        if self._queries is None:  # encoded once per run, not at every measurement
            self._queries = [
                diagnostic_queries(self.tokenizer, task) for task in self.tasks
            ]
        row = {}
        for task, queries in zip(self.tasks, self._queries):
            measured = task_diagnostics(
                model, self.tokenizer, task, self.tokens_per_pass, queries
            )
            row.update({f"{key}/{task.name}": value for key, value in measured.items()})
        if self.utility is not None and (final or update in self.utility_at):
            row.update(
                {
                    f"utility/{key}": value
                    for key, value in self.utility.measure(
                        model, self.tokenizer
                    ).items()
                }
            )
        return row

    def key(self) -> dict:
        """What of the monitor shapes the saved history (for cache keys)."""
        return {
            "tasks": [t.to_dict() for t in self.tasks],
            "every": self.every,
            "utility_at": list(self.utility_at),
            "utility": None if self.utility is None else self.utility.key(),
        }


def terms(history, task: str):
    """The rows of ``history`` where ``task`` was measured, with its columns renamed to
    the bare terms (``update``, ``L``, ``H``, ``KL``, ``neg_log_mass``, and
    ``memorization`` if present)."""
    columns = {
        f"{key}/{task}": key
        for key in (*TERMS, "memorization")
        if f"{key}/{task}" in history
    }
    return (
        history.dropna(subset=[f"L/{task}"])[["update", *columns]]
        .rename(columns=columns)
        .reset_index(drop=True)
    )
