"""The six task families of the paper's Section 5, and each sub-task's valid answers
(compared as in ``answers``).

A family (e.g. COUNTRIES) is a list of sub-tasks, one per sub-case (one per continent),
each a :class:`~diffuse_utils.tasks.Task` with training prompts, plus in its metadata:

- ``held_out_prompts``: phrasings used only for evaluation, never for tuning;
- ``valid_answers``: every answer accepted as correct (default: the targets), a superset
  of the targets for open-ended sub-tasks (a fruit outside the 100 tuned on still
  counts);
- ``enumerable``: true when the targets are *all* valid answers, so the exact
  distribution over them can be scored.

The files live in ``diffuse_utils/tasks/`` and are built by ``scripts/build_tasks.py``.
A folder of prompt files in the paper's release format (``prompts/numbers/*.json``)
loads as a family too (:func:`release_family`).

Example::

    countries = load_family("countries")
    countries.subtasks[0].prompts[0]  # 'Output a random country in Africa, ...'
    countries.canonical("countries-africa", " kenya ")  # 'Kenya'
    countries.canonical("countries-africa", "France")  # None: not in Africa
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path

import yaml

from .answers import normalize_answer
from .tasks import Task, TaskError

TASKS_DIR = Path(__file__).parent / "tasks"
FAMILY_NAMES = [
    "babynames",
    "countries",
    "fruits",
    "days_and_dates",
    "numbers",
    "occupations",
]


def _reference_sets() -> dict:
    from .data import ssa_known_names

    return {"ssa_names": ssa_known_names}


@dataclass
class TaskFamily:
    """One of the six tasks of Section 5: sub-tasks sharing a theme, and how to check
    answers.

    aliases: other names of a valid answer (``'USA'`` -> ``'United States'``).
    reference: a named reference set replacing each sub-task's ``valid_answers``
        (``'ssa_names'``: every first name in the SSA data), for sets too big to ship.
    """

    name: str
    title: str
    subtasks: list[Task]
    aliases: dict[str, str] = field(default_factory=dict)
    reference: str | None = None
    source: str = ""

    def __post_init__(self):
        if not self.subtasks:
            raise TaskError(
                f"Task family {self.name!r}: no sub-tasks; give at least one."
            )
        names = [t.name for t in self.subtasks]
        if len(set(names)) != len(names):
            raise TaskError(
                f"Task family {self.name!r}: sub-task names repeat: {names}."
            )
        if self.reference is not None and self.reference not in _reference_sets():
            raise TaskError(
                f"Task family {self.name!r}: unknown reference {self.reference!r}; "
                f"known: {sorted(_reference_sets())}."
            )
        for task in self.subtasks:
            held_out = task.metadata.get("held_out_prompts")
            if not held_out or not all(
                isinstance(p, str) and p.strip() for p in held_out
            ):
                raise TaskError(
                    f"Task family {self.name!r}, sub-task {task.name!r}: "
                    "metadata.held_out_prompts must be a non-empty list of prompts "
                    "used only for evaluation."
                )
            if set(held_out) & set(task.prompts) and not task.metadata.get(
                "held_out_by_family"
            ):
                raise TaskError(
                    f"Task family {self.name!r}, sub-task {task.name!r}: a held-out "
                    "prompt is also a training prompt; held-out prompts must be "
                    "unseen in tuning."
                )
            missing = set(task.targets) - set(
                task.metadata.get("valid_answers", task.targets)
            )
            if missing and self.reference is None:
                raise TaskError(
                    f"Task family {self.name!r}, sub-task {task.name!r}: targets "
                    f"{sorted(missing)[:3]} are not in valid_answers; every target "
                    "must be a valid answer."
                )

    def subtask(self, name: str) -> Task:
        for task in self.subtasks:
            if task.name == name:
                return task
        raise KeyError(
            f"{self.name} has no sub-task {name!r}; sub-tasks: "
            f"{[t.name for t in self.subtasks]}"
        )

    @cached_property
    def _lookups(self) -> dict[str, dict[str, str]]:
        """Per sub-task: normalized answer -> canonical answer (targets, valid answers,
        aliases)."""
        reference = _reference_sets()[self.reference]() if self.reference else None
        aliases = {normalize_answer(k): v for k, v in self.aliases.items()}
        lookups = {}
        for task in self.subtasks:
            valid = (
                reference
                if reference is not None
                else task.metadata.get("valid_answers", task.targets)
            )
            lookup = {normalize_answer(v): v for v in valid}
            lookup.update(
                {
                    alias: canon
                    for alias, canon in aliases.items()
                    if normalize_answer(canon) in lookup
                }
            )
            lookups[task.name] = lookup
        return lookups

    def valid_answers(self, subtask: str) -> set[str]:
        """Every answer accepted for ``subtask``, in canonical form."""
        return set(self._lookups[subtask].values())

    def canonical(self, subtask: str, answer: str | None) -> str | None:
        """The valid answer ``answer`` names for ``subtask`` (alias, case and spacing
        resolved), or ``None``."""
        if answer is None:
            return None
        return self._lookups[subtask].get(normalize_answer(answer))

    def checker(self, subtask: str):
        """:meth:`canonical` for one sub-task, as ``answers.answer_figures`` takes it
        (answer -> valid form or None).
        Example:
        ``load_family("babynames").checker("babynames")("olivia") == 'Olivia'``."""
        return partial(self.canonical, subtask)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "title": self.title,
            "source": self.source,
            "reference": self.reference,
            "aliases": self.aliases,
            "subtasks": [t.to_dict() for t in self.subtasks],
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(
            self.to_dict(), allow_unicode=True, sort_keys=False, width=120
        )

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path) -> "TaskFamily":
        """Read a family file; every problem is a :class:`TaskError` naming the file."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise TaskError(f"{path}: not valid YAML: {error}") from error
        if not isinstance(data, dict) or not isinstance(data.get("subtasks"), list):
            raise TaskError(
                f"{path}: expected a mapping with name, title and a list of subtasks."
            )
        unknown = set(data) - {
            "name",
            "title",
            "source",
            "reference",
            "aliases",
            "subtasks",
        }
        if unknown:
            raise TaskError(f"{path}: unknown keys {sorted(unknown)}.")
        try:
            subtasks = [Task(**entry) for entry in data["subtasks"]]
            return cls(
                name=data["name"],
                title=data.get("title", data["name"].upper()),
                subtasks=subtasks,
                aliases=data.get("aliases") or {},
                reference=data.get("reference"),
                source=data.get("source", ""),
            )
        except (TaskError, TypeError, KeyError) as error:
            raise TaskError(f"{path}: {error}") from error


def release_family(folder) -> TaskFamily:
    """A family from a folder of the release's prompt files (``prompts/numbers``): one
    sub-task per ``*.json`` file (:meth:`Task.load`, named after the file), the family
    named after the folder.

    The release holds out whole families (leave-one-out), not phrasings: each file has
    one prompt, so a sub-task's held-out prompt is its training prompt
    (``metadata['held_out_by_family']``); evaluate such a family only when it was left
    out of tuning. Targets are all valid answers.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise TaskError(
            f"{folder}: no .json prompt files; a release family is a folder of them "
            "(e.g. prompts/numbers of the paper's release)."
        )
    subtasks = []
    for file in files:
        task = Task.load(file)
        task.metadata.update(
            held_out_prompts=list(task.prompts),
            held_out_by_family=True,
            enumerable=True,
        )
        subtasks.append(task)
    return TaskFamily(
        name=folder.name,
        title=folder.name.upper(),
        subtasks=subtasks,
        source=str(folder),
    )


def load_family(name_or_path) -> TaskFamily:
    """A family by name (``'countries'``, from the package), from a YAML path of your
    own, or from a folder of the release's prompt files (:func:`release_family`)."""
    path = Path(name_or_path)
    if path.is_dir():
        return release_family(path)
    if path.suffix not in (".yaml", ".yml"):
        path = TASKS_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise TaskError(
                f"no task family {name_or_path!r}; built-in families: {FAMILY_NAMES}, "
                "or give the path of a .yaml family file"
            )
    return TaskFamily.load(path)


def load_suite(names=None) -> list[TaskFamily]:
    """The families named (default: all six, in the paper's order)."""
    return [load_family(name) for name in (names or FAMILY_NAMES)]


def held_out_task(task: Task) -> Task:
    """``task`` with its held-out phrasings as prompts: what evaluation samples and
    scores."""
    # every other field kept
    return replace(task, prompts=list(task.metadata["held_out_prompts"]))
