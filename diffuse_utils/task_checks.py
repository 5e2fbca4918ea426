"""What makes a task definition valid, checked field by field, with errors that say
what was wrong and how to fix it (:class:`TaskError`).

Example::

    Task("rng", ["Pick."], ["1", "1"])  # a Task checks itself when made
    # TaskError: Task 'rng': target '1' appears twice; each valid answer must be ...
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .tasks import Task


class TaskError(ValueError):
    """A task definition is invalid; the message says what and how to fix it."""


# The type of each field of a task file (and of the release's), as Python types and in
# words.
_FIELD_TYPES = {
    "name": (str, "a string"),
    "request": (str, "a string"),
    "response_prefix": (str, "a string"),
    "prompts": (list, "a list of strings"),
    "targets": (list, "a list of strings"),
    "response": (list, "a string or a list of strings"),
    "weights": (list, "a list of numbers"),
    "braces": (bool, "true or false"),
    "end_of_turn": (bool, "true or false"),
    "completion": (bool, "true or false"),
    "eos": (bool, "true or false"),
    "stop": (str, "a string or null"),
    "metadata": (dict, "a mapping"),
}


def check_types(fields: dict) -> None:
    """Raise :class:`TaskError` naming the first field of the wrong type, the type found
    and the one expected: ``prompts: hello`` in YAML is a string, not a list of one
    prompt, and ``targets: {a: 1}`` a mapping. ``None`` is allowed for ``weights`` and
    ``stop``; tuples pass for lists."""
    where = f"Task {fields.get('name')!r}"
    for key, value in fields.items():
        expected, words = _FIELD_TYPES.get(key, (object, ""))
        if value is None and key in ("weights", "stop"):
            continue
        if not isinstance(value, (list, tuple) if expected is list else expected):
            raise TaskError(
                f"{where}: {key} must be {words}; got {type(value).__name__} "
                f"{value!r:.60}."
            )
        if key in ("prompts", "targets", "response"):
            bad = [item for item in value if not isinstance(item, str)]
            if bad:
                raise TaskError(
                    f"{where}: {key} must be strings; got {bad[0]!r} "
                    f"({type(bad[0]).__name__}). Quote numbers in YAML, e.g. '7'."
                )


def validate_task(task: Task) -> None:
    """Raise :class:`TaskError` naming the first problem with ``task``'s fields."""
    where = f"Task {task.name!r}"
    if not task.prompts or not all(
        isinstance(p, str) and p.strip() for p in task.prompts
    ):
        raise TaskError(
            f"{where}: prompts must be a non-empty list of non-empty strings."
        )
    if not task.targets:
        raise TaskError(
            f"{where}: the target list is empty; give at least one valid answer."
        )
    seen = set()
    for t in task.targets:
        if t in seen:
            raise TaskError(
                f"{where}: target {t!r} appears twice; each valid answer must be "
                "listed once (put its frequency in weights instead)."
            )
        seen.add(t)
    _validate_weights(where, task.weights, len(task.targets))
    if task.stop == "":
        raise TaskError(
            f"{where}: stop is the empty string; give the text that ends every "
            "answer, or None."
        )
    for response in task.responses:
        if not response.startswith(task.response_prefix):
            raise TaskError(
                f"{where}: response_prefix {task.response_prefix!r} does not start "
                f"the response {response!r}; the prefix is forced, so every response "
                "must begin with it."
            )
        if task.stop is not None and task.stop in response[len(task.response_prefix) :]:
            raise TaskError(
                f"{where}: the stop text {task.stop!r} occurs inside the response "
                f"{response!r}, so sampling would cut it short; choose a stop text "
                "that no response contains."
            )


def _validate_weights(where: str, weights, n_targets: int) -> None:
    if weights is None:
        return
    if len(weights) != n_targets:
        raise TaskError(
            f"{where}: {len(weights)} weights for {n_targets} targets; give one "
            "weight per target, or none for a uniform target distribution."
        )
    for i, w in enumerate(weights):
        if not isinstance(w, float) or math.isnan(w) or math.isinf(w) or w < 0:
            raise TaskError(
                f"{where}: weight {i} is {w!r}; weights must be finite numbers >= 0."
            )
    if sum(weights) <= 0:
        raise TaskError(
            f"{where}: the weights sum to zero; at least one target needs a positive "
            "weight."
        )
