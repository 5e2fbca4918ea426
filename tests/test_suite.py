import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from diffuse_utils import FAMILY_NAMES, TaskError, load_family, load_suite
from diffuse_utils.answers import normalize_answer
from diffuse_utils.suite import TaskFamily
from diffuse_utils.suite import held_out_task

ROOT = Path(__file__).resolve().parents[1]


def test_the_six_families_load_with_their_sizes():
    suite = load_suite()
    assert [f.name for f in suite] == FAMILY_NAMES
    sizes = {f.name: [len(t.targets) for t in f.subtasks] for f in suite}
    assert sum(sizes["countries"]) == 193  # UN member states, each on one continent
    assert sizes["days_and_dates"] == [7, 31, 30, 30, 31]
    assert sizes["numbers"] == [15, 25, 25, 25]
    assert sizes["fruits"] == [100] and sizes["occupations"] == [30, 30, 30, 30]
    babynames = suite[0].subtasks[0]
    assert sum(babynames.weights) == 200 and len(babynames.targets) == 187  # 200 draws, 187 distinct names
    for family in suite:
        for task in family.subtasks:
            assert not set(task.metadata["held_out_prompts"]) & set(task.prompts)
            assert all(family.canonical(task.name, t) == t for t in task.targets)


def test_task_files_are_what_the_build_script_writes():
    """The shipped YAML files are reproducible from the packages' data (fails if edited by hand)."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_tasks.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("text, expected", [("  June 3rd. ", "june 3"), ("Bosnia-and-Herzegovina", "bosnia and herzegovina"),
                                            ("'Kiwi'", "kiwi"), ("New   York", "new york"), ("21st", "21")])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_canonical_answers_resolve_aliases_case_and_sub_task():
    countries = load_family("countries")
    assert countries.canonical("countries-africa", " kenya ") == "Kenya"
    assert countries.canonical("countries-north-america", "USA") == "United States"
    assert countries.canonical("countries-europe", "the netherlands") == "Netherlands"
    assert countries.canonical("countries-africa", "France") is None  # a country, but not in Africa
    assert countries.canonical("countries-asia", "Taiwan") == "Taiwan"  # valid, though not a target
    assert "Taiwan" not in countries.subtask("countries-asia").targets
    assert countries.canonical("countries-africa", None) is None
    assert load_family("days_and_dates").canonical("date-june", "June 3rd") == "June 3"
    assert load_family("days_and_dates").canonical("date-june", "June 31") is None
    names = load_family("babynames")
    assert names.canonical("babynames", "olivia") == "Olivia" and names.canonical("babynames", "Xq1") is None
    fruits = load_family("fruits")
    assert fruits.canonical("fruits", "blood orange") == "Blood orange"  # valid, outside the 100 targets
    assert "Blood orange" not in fruits.subtasks[0].targets


def _family_dict(**changes):
    task = {"name": "pick", "prompts": ["Pick a letter."], "targets": ["a", "b"],
            "metadata": {"held_out_prompts": ["Choose a letter."]}}
    task.update(changes)
    return {"name": "letters", "title": "LETTERS", "subtasks": [task]}


def test_family_round_trip(tmp_path):
    family = TaskFamily.load(_write(tmp_path, _family_dict()))
    family.save(tmp_path / "again.yaml")
    assert TaskFamily.load(tmp_path / "again.yaml").to_dict() == family.to_dict()
    assert held_out_task(family.subtasks[0]).prompts == ["Choose a letter."]
    assert load_family(tmp_path / "again.yaml").name == "letters"


def _write(tmp_path, data):
    path = tmp_path / "family.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"metadata": {}}, "sub-task 'pick': metadata.held_out_prompts must be a non-empty list"),
    ({"metadata": {"held_out_prompts": ["Pick a letter."]}}, "a held-out prompt is also a training prompt"),
    ({"metadata": {"held_out_prompts": ["x"], "valid_answers": ["a"]}}, r"targets \['b'\] are not in valid_answers"),
    ({"targets": ["a", "a"]}, "target 'a' appears twice"),
])
def test_bad_family_files_say_what_is_wrong(tmp_path, changes, message):
    with pytest.raises(TaskError, match=message) as error:
        TaskFamily.load(_write(tmp_path, _family_dict(**changes)))
    assert "family.yaml" in str(error.value)


def test_unknown_family_and_reference_are_named(tmp_path):
    with pytest.raises(TaskError, match="no task family 'cities'; built-in families: .*babynames"):
        load_family("cities")
    data = {**_family_dict(), "reference": "all_words"}
    with pytest.raises(TaskError, match="unknown reference 'all_words'; known: \\['ssa_names'\\]"):
        TaskFamily.load(_write(tmp_path, data))
    with pytest.raises(TaskError, match="unknown keys \\['colour'\\]"):
        TaskFamily.load(_write(tmp_path, {**_family_dict(), "colour": "red"}))
