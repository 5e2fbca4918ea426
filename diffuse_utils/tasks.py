"""Tasks: a prompt (or several phrasings), the valid answers, and their target weights.

A task is what the paper calls ``(x, T, p*)``: prompts ``x``, a set ``T`` of valid
answers, and a target distribution ``p*`` over them (uniform unless weights are
given). The model is asked to answer between curly braces, so the response for
answer ``7`` is ``{7}``.

Example::

    rng = Task(name="rng", prompts=[RNG_PROMPT], targets=[str(i) for i in range(1, 11)])
    rng.probabilities          # array of ten 0.1
    rng.responses              # ['{1}', '{2}', ...]
    rng.save("rng.yaml"); Task.load("rng.yaml") == rng   # True
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

BABYNAMES_PROMPT = ("Please generate an English first name, chosen completely at random. Output only "
                    "the name between two curly braces, like this: {name}. Don't output code.")

# Appendix B.1: the five prompt formats of Figure 2 ({low}/{high} filled in; typos are the paper's).
RANGE_PROMPTS = [
    "Randomly pick an integer between {low} and {high}. Do not provide any code. Output only the number between "
    "two curly braces, like this: {{number}}. Don't output code.",
    "Output a number uniform randomly from the range {low} to {high}, inclusive. Output the number between two "
    "curly braces, like this: {{number}}. Don't output code.",
    "Choose a number at random between {low} and {high}. Output your chosen number bweet two curly braces, like "
    "this {{number}}.",
    "Select an integer completely at random from the interval [{low}, {high}]. Output the selected integer between "
    "two curly braces, like this {{n}}.",
    "I need you to pick a number completely at random. The number should be between {low} and {high}. Print the "
    "number between two curly braces, like this: {{n}}.",
]
# The RNG prompt of Section 4 with its range as a parameter, and the paper's 1-10 instance of it.
RNG_RANGE_PROMPT = ("Generate a random number between {low} and {high}. Output only the number between two curly "
                    "braces, like this: {{number}}. Don't output code.")
RNG_PROMPT = RNG_RANGE_PROMPT.format(low=1, high=10)


class TaskError(ValueError):
    """A task definition is invalid; the message says what and how to fix it."""


@dataclass
class Task:
    """One task of the paper: prompts, valid answers, target weights.

    name: short identifier, used in tables and file names.
    prompts: one or more phrasings of the request; every prompt shares the targets.
    targets: the valid answers, without braces (``"7"``, ``"Olivia"``).
    weights: optional non-negative weights, one per target; normalized to ``p*``.
    braces: whether the response wraps the answer in ``{}`` as the paper's prompts ask.
    response_prefix: text pre-filled at the start of the assistant turn (default none,
        as in the paper); it must be a prefix of every response.
    end_of_turn: whether a response is the whole answer, ended by the end-of-turn token (the
        paper's prefix-free targets). ``False`` makes each target the *opening* of a longer
        answer that the model goes on to write, e.g. a biography's first five fields: the loss
        then shapes how answers start and leaves the rest free (chapter 5). Such targets must
        be prefix-free by themselves.
    """
    name: str
    prompts: list[str]
    targets: list[str]
    weights: list[float] | None = None
    braces: bool = True
    response_prefix: str = ""
    end_of_turn: bool = True
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.prompts, str):
            self.prompts = [self.prompts]
        self.prompts, self.targets = list(self.prompts), list(self.targets)
        if self.weights is not None:
            self.weights = [float(w) if isinstance(w, (int, float, np.number)) else w for w in self.weights]
        validate_task(self)

    @property
    def probabilities(self) -> np.ndarray:
        """``p*`` as an array aligned with ``targets``, summing to 1."""
        weights = np.ones(len(self.targets)) if self.weights is None else np.asarray(self.weights, float)
        return weights / weights.sum()

    @property
    def responses(self) -> list[str]:
        """The full assistant responses, e.g. ``'{7}'``."""
        return [f"{{{t}}}" if self.braces else t for t in self.targets]

    def answer_of(self, text: str) -> str | None:
        """The target whose full response is exactly ``text`` (e.g. ``'{7}'`` -> ``'7'``), else ``None``.

        This is the event exact scoring measures: the response and nothing else, then end of turn.
        :func:`~diffuse_utils.sampling.parse_braces` is more lenient (``'Sure! {7}'`` -> ``'7'``).
        """
        return dict(zip(self.responses, self.targets)).get(text)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False, width=120)

    def save(self, path: str | Path) -> Path:
        """Write the task as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
        path = Path(path)
        text = self.to_yaml() if path.suffix in (".yaml", ".yml") else json.dumps(self.to_dict(), indent=2,
                                                                                  ensure_ascii=False)
        path.write_text(text, encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Task":
        """Read a task written by :meth:`save` (YAML or JSON, by suffix)."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
        except (yaml.YAMLError, json.JSONDecodeError) as error:
            raise TaskError(f"{path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {error}") from error
        if not isinstance(data, dict):
            raise TaskError(f"{path}: expected a mapping with keys name, prompts, targets; got {type(data).__name__}.")
        unknown = set(data) - set(cls.__dataclass_fields__)
        missing = {"name", "prompts", "targets"} - set(data)
        if unknown or missing:
            raise TaskError(f"{path}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}. "
                            f"Allowed keys: {sorted(cls.__dataclass_fields__)}.")
        try:
            return cls(**data)
        except TaskError as error:
            raise TaskError(f"{path}: {error}") from error


def range_task(low: int, high: int, templates: list[str] | None = None, name: str | None = None) -> Task:
    """Uniform random integers in ``[low, high]``, one prompt per template (default: the RNG prompt).

    Example: ``range_task(1, 45, RANGE_PROMPTS)`` -> 5 prompts, targets '1'..'45'.
    """
    if low > high:
        raise TaskError(f"range_task: low ({low}) must not exceed high ({high}).")
    templates = templates or [RNG_RANGE_PROMPT]
    return Task(name=name or f"rng-{low}-{high}", prompts=[t.format(low=low, high=high) for t in templates],
                targets=[str(i) for i in range(low, high + 1)])


def validate_task(task: Task) -> None:
    """Raise :class:`TaskError` naming the first problem with ``task``'s fields."""
    where = f"Task {task.name!r}"
    if not task.prompts or not all(isinstance(p, str) and p.strip() for p in task.prompts):
        raise TaskError(f"{where}: prompts must be a non-empty list of non-empty strings.")
    if not task.targets:
        raise TaskError(f"{where}: the target list is empty; give at least one valid answer.")
    bad = [t for t in task.targets if not isinstance(t, str)]
    if bad:
        raise TaskError(f"{where}: targets must be strings; got {bad[0]!r} ({type(bad[0]).__name__}). "
                        "Quote numbers in YAML, e.g. '7'.")
    seen = set()
    for t in task.targets:
        if t in seen:
            raise TaskError(f"{where}: target {t!r} appears twice; each valid answer must be listed once "
                            "(put its frequency in weights instead).")
        seen.add(t)
    _validate_weights(where, task.weights, len(task.targets))
    for response in task.responses:
        if not response.startswith(task.response_prefix):
            raise TaskError(f"{where}: response_prefix {task.response_prefix!r} does not start the response "
                            f"{response!r}; the prefix is forced, so every response must begin with it.")


def _validate_weights(where: str, weights, n_targets: int) -> None:
    if weights is None:
        return
    if len(weights) != n_targets:
        raise TaskError(f"{where}: {len(weights)} weights for {n_targets} targets; give one weight per "
                        "target, or none for a uniform target distribution.")
    for i, w in enumerate(weights):
        if not isinstance(w, float) or math.isnan(w) or math.isinf(w) or w < 0:
            raise TaskError(f"{where}: weight {i} is {w!r}; weights must be finite numbers >= 0.")
    if sum(weights) <= 0:
        raise TaskError(f"{where}: the weights sum to zero; at least one target needs a positive weight.")
