"""Tasks: a prompt (or several phrasings), the valid answers, and their target weights.

A task is what the paper calls ``(x, T, p*)``: prompts ``x``, a set ``T`` of valid
answers, and a target distribution ``p*`` over them (uniform unless weights are
given). The model is asked to answer between curly braces, so the response for
answer ``7`` is ``{7}``. A task is in chat form (the prompt is a user message) or, for a
base model without a chat template, in completion form (the model continues the prompt's
text, and ``stop`` ends every answer). :meth:`Task.load` also reads the paper's release
format (``request``, ``response``, ``targets``, ``weights``, ``eos``).

Example::

    rng = Task(name="rng", prompts=[RNG_PROMPT], targets=[str(i) for i in range(1, 11)])
    rng.probabilities  # array of ten 0.1
    rng.responses  # ['{1}', '{2}', ...]
    rng.save("rng.yaml")
    Task.load("rng.yaml") == rng  # True
    die = Task(
        "die",
        [DIE_PROMPT],
        [f" {i}" for i in range(1, 21)],
        braces=False,
        completion=True,
        stop=".",
    )
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

# the prompts are re-exported: tasks.RNG_PROMPT, ...
from .prompts import (  # noqa: F401
    BABYNAMES_PROMPT,
    DIE_PROMPT,
    RANGE_PROMPTS,
    RNG_PROMPT,
    RNG_RANGE_PROMPT,
)
from .task_checks import TaskError, check_types, validate_task

# The keys of a prompt file in the paper's release (y0mingzhang/diffuse-distributions,
# prompts/*/*.json).
RELEASE_KEYS = ("request", "response", "targets", "weights", "eos")


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
    end_of_turn: whether a response is the whole answer, ended by the end-of-turn token
        (the paper's prefix-free targets). ``False`` makes each target the *opening* of
        a longer answer that the model goes on to write, e.g. a biography's first five
        fields: the loss then shapes how answers start and leaves the rest free (chapter
        5). Such targets must be prefix-free by themselves.
    completion: the prompts are plain text that the model continues (a base model's
        form, e.g. :data:`DIE_PROMPT`), encoded without a chat template;
        ``response_prefix`` is then text appended to the prompt. ``False``: each prompt
        is a user message of the chat template.
    stop: the text that ends every answer (``"\n"``, ``"."``): written after each
        response when ``end_of_turn``, and where sampling stops. ``None``: the chat
        template's end-of-turn token, or the EOS token in completion form. It may not
        occur inside a response.
    """

    name: str
    prompts: list[str]
    targets: list[str]
    weights: list[float] | None = None
    braces: bool = True
    response_prefix: str = ""
    end_of_turn: bool = True
    completion: bool = False
    stop: str | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        check_types(vars(self))
        self.prompts, self.targets = list(self.prompts), list(self.targets)
        if self.weights is not None:
            self.weights = [
                float(w)
                if isinstance(w, (int, float, np.number)) and not isinstance(w, bool)
                else w
                for w in self.weights
            ]
        validate_task(self)

    @property
    def probabilities(self) -> np.ndarray:
        """``p*`` as an array aligned with ``targets``, summing to 1."""
        weights = (
            np.ones(len(self.targets))
            if self.weights is None
            else np.asarray(self.weights, float)
        )
        return weights / weights.sum()

    @property
    def responses(self) -> list[str]:
        """The full assistant responses, e.g. ``'{7}'``."""
        return [f"{{{t}}}" if self.braces else t for t in self.targets]

    def answer_of(self, text: str) -> str | None:
        """The target whose full response is exactly ``text`` (e.g. ``'{7}'`` ->
        ``'7'``), else ``None``.

        This is the event exact scoring measures: the response and nothing else, then
        end of turn. :func:`~diffuse_utils.answers.parse_braces` is more lenient
        (``'Sure! {7}'`` -> ``'7'``).
        """
        return dict(zip(self.responses, self.targets)).get(text)

    def to_dict(self) -> dict:
        """The fields as a dict; ``completion`` and ``stop`` only where set (files of
        chat tasks keep their form)."""
        data = asdict(self)
        return {
            k: v
            for k, v in data.items()
            if k not in ("completion", "stop") or v not in (False, None)
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            self.to_dict(), allow_unicode=True, sort_keys=False, width=120
        )

    def save(self, path: str | Path) -> Path:
        """Write the task as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
        path = Path(path)
        text = (
            self.to_yaml()
            if path.suffix in (".yaml", ".yml")
            else json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
        )
        path.write_text(text, encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Task":
        """Read a task written by :meth:`save` (YAML or JSON, by suffix), or a prompt
        file of the paper's release (a mapping with ``request``: see
        :func:`release_task`), named after the file."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        try:
            data = (
                yaml.safe_load(text)
                if path.suffix in (".yaml", ".yml")
                else json.loads(text)
            )
        except (yaml.YAMLError, json.JSONDecodeError) as error:
            raise TaskError(
                f"{path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'}: "
                f"{error}"
            ) from error
        if not isinstance(data, dict):
            raise TaskError(
                f"{path}: expected a mapping with keys name, prompts, targets; got "
                f"{type(data).__name__}."
            )
        if "request" in data:
            try:
                return release_task(data, name=path.stem)
            except TaskError as error:
                raise TaskError(f"{path}: {error}") from error
        unknown = set(data) - set(cls.__dataclass_fields__)
        missing = {"name", "prompts", "targets"} - set(data)
        if unknown or missing:
            raise TaskError(
                f"{path}: unknown keys {sorted(unknown)}, missing keys "
                f"{sorted(missing)}. Allowed keys: "
                f"{sorted(cls.__dataclass_fields__)}."
            )
        try:
            return cls(**data)
        except TaskError as error:
            raise TaskError(f"{path}: {error}") from error


def range_task(
    low: int, high: int, templates: list[str] | None = None, name: str | None = None
) -> Task:
    """Uniform random integers in ``[low, high]``, one prompt per template (default: the
    RNG prompt).

    Example: ``range_task(1, 45, RANGE_PROMPTS)`` -> 5 prompts, targets '1'..'45'.
    """
    if low > high:
        raise TaskError(f"range_task: low ({low}) must not exceed high ({high}).")
    templates = templates or [RNG_RANGE_PROMPT]
    return Task(
        name=name or f"rng-{low}-{high}",
        prompts=[t.format(low=low, high=high) for t in templates],
        targets=[str(i) for i in range(low, high + 1)],
    )


def release_task(data: dict, name: str) -> Task:
    """A task from a prompt of the paper's release: ``request`` (the user message),
    ``response`` (an opening, or a list of them, written before each target),
    ``targets``, ``weights``, ``eos``.

    As in the release, an opening is part of what is scored and tuned
    (``log p(opening + target)``), and ``eos`` (default true) ends each target with the
    end-of-turn token. With the one opening ``""`` (every release file), targets that
    are each one braced field (``"{7}"``) load as answers ``"7"`` with ``braces=True``
    (the same responses, so the same token ids); other targets load as written, with
    ``braces=False``. Several openings: where the release draws one opening per target
    at each step, the task holds every (opening, target) pair, ``opening + target``,
    with the target's weight split evenly: its loss is the release's expected loss,
    without the draw, and scores and metrics are over pairs (``metadata['openings']``
    lists the openings).
    Example: ``release_task({"request": "Pick.", "response": [""], "targets": ["{1}",
    "{2}"]}, "rng")``.
    """
    unknown, missing = (
        set(data) - set(RELEASE_KEYS),
        {"request", "response", "targets"} - set(data),
    )
    if unknown or missing:
        raise TaskError(
            f"a release prompt file has keys {list(RELEASE_KEYS)}; unknown keys "
            f"{sorted(unknown)}, missing keys {sorted(missing)}."
        )
    openings = (
        [data["response"]] if isinstance(data["response"], str) else data["response"]
    )
    targets, weights, eos = (
        data["targets"],
        data.get("weights") or None,
        data.get("eos", True),
    )
    check_types(
        {
            "name": name,
            "request": data["request"],
            "response": openings,
            "targets": targets,
            "weights": weights,
            "eos": eos,
        }
    )
    common = dict(name=name, prompts=[data["request"]], end_of_turn=eos)
    if openings == [""]:
        braced = bool(targets) and all(re.fullmatch(r"\{[^{}]*\}", t) for t in targets)
        return Task(
            targets=[t[1:-1] for t in targets] if braced else targets,
            weights=weights,
            braces=braced,
            metadata={"format": "release"},
            **common,
        )
    weights = [
        w / len(openings) for w in (weights or [1.0] * len(targets)) for _ in openings
    ]
    return Task(
        targets=[o + t for t in targets for o in openings],
        weights=weights,
        braces=False,
        metadata={"format": "release", "openings": openings},
        **common,
    )
