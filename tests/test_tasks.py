import json
import math

import numpy as np
import pytest

from diffuse_utils import Task, TaskError


def test_uniform_by_default_and_responses_have_braces():
    task = Task("t", ("Pick",), ["1", "2", "3", "4"])
    assert task.prompts == ["Pick"]
    np.testing.assert_allclose(task.probabilities, [0.25] * 4)
    assert task.responses == ["{1}", "{2}", "{3}", "{4}"]
    assert Task("t", ["p"], ["x"], braces=False).responses == ["x"]


def test_weights_are_normalized():
    np.testing.assert_allclose(Task("t", ["p"], ["a", "b"], weights=[1, 3]).probabilities, [0.25, 0.75])


@pytest.mark.parametrize("kwargs, message", [
    (dict(targets=[]), "target list is empty"),
    (dict(targets=["a", "b", "a"]), "'a' appears twice"),
    (dict(targets=["a", 7]), "targets must be strings; got 7 (int)"),
    (dict(targets=["a", "b"], weights=[1.0, -1.0]), "weight 1 is -1.0"),
    (dict(targets=["a", "b"], weights=[1.0, math.nan]), "weight 1 is nan"),
    (dict(targets=["a", "b"], weights=[math.inf, 1.0]), "weight 0 is inf"),
    (dict(targets=["a", "b"], weights=[0, 0]), "weights sum to zero"),
    (dict(targets=["a", "b"], weights=[1.0]), "1 weights for 2 targets"),
    (dict(targets=["a"], weights=["1"]), "weight 0 is '1'"),
    (dict(targets=["a"], prompts=[]), "prompts must be a non-empty list"),
    (dict(targets=["a"], response_prefix="x"), "does not start the response '{a}'"),
])
def test_bad_input_raises_clear_error(kwargs, message):
    fields = dict(name="bad", prompts=["p"]) | kwargs
    with pytest.raises(TaskError, match="Task 'bad'") as info:
        Task(**fields)
    assert message in str(info.value)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_save_load_round_trip(tmp_path, suffix):
    task = Task("names", ["Name one.", "Another name."], ["Olivia", "Zoë", "李"], weights=[3, 2, 1],
                response_prefix="{", metadata={"source": "test"})
    path = task.save(tmp_path / f"task{suffix}")
    assert Task.load(path) == task


def test_load_reports_file_and_problem(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"name": "x", "prompts": ["p"], "targets": ["a", "a"]}))
    with pytest.raises(TaskError, match=r"t\.json: Task 'x': target 'a' appears twice"):
        Task.load(path)
    path.write_text(json.dumps({"name": "x", "prompt": "p", "targets": ["a"]}))
    with pytest.raises(TaskError, match=r"unknown keys \['prompt'\], missing keys \['prompts'\]"):
        Task.load(path)
    bad_yaml = tmp_path / "t.yaml"
    bad_yaml.write_text("name: [unclosed")
    with pytest.raises(TaskError, match="not valid YAML"):
        Task.load(bad_yaml)


def test_yaml_numbers_must_be_quoted(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("name: n\nprompts: [p]\ntargets: [1, 2]\n")
    with pytest.raises(TaskError, match="Quote numbers in YAML"):
        Task.load(path)


def test_range_task_fills_every_template():
    from diffuse_utils import RANGE_PROMPTS, RNG_PROMPT, range_task
    task = range_task(1, 45, RANGE_PROMPTS)
    assert task.targets == [str(i) for i in range(1, 46)] and len(task.prompts) == 5
    assert task.prompts[3].startswith("Select an integer completely at random from the interval [1, 45].")
    assert task.prompts[3].endswith("like this {n}.")
    assert range_task(1, 10).prompts == [RNG_PROMPT] and range_task(1, 10).name == "rng-1-10"
    with pytest.raises(TaskError, match=r"low \(5\) must not exceed high \(4\)"):
        range_task(5, 4)


def test_answer_of_is_an_exact_response_match():
    task = Task("t", ["p"], ["1", "10"])
    assert task.answer_of("{10}") == "10" and task.answer_of("{1}") == "1"
    assert task.answer_of("Sure! {1}") is None and task.answer_of("{1} ") is None and task.answer_of("1") is None


@pytest.mark.parametrize("text, field, found, expected", [
    ("name: t\nprompts: hello\ntargets: [a]\n", "prompts", "str", "a list of strings"),
    ("name: t\nprompts: [p]\ntargets: {a: 1}\n", "targets", "dict", "a list of strings"),
    ("name: t\nprompts: [p]\ntargets: [a]\nweights: {a: 1}\n", "weights", "dict", "a list of numbers"),
    ("name: t\nprompts: [p]\ntargets: [a]\nbraces: 'no'\n", "braces", "str", "true or false"),
    ("name: t\nprompts: [p]\ntargets: [a]\nstop: 7\n", "stop", "int", "a string or null"),
    ("name: t\nprompts: [p]\ntargets: [a]\nmetadata: [x]\n", "metadata", "list", "a mapping"),
    ("name: 7\nprompts: [p]\ntargets: [a]\n", "name", "int", "a string"),
])
def test_task_files_are_checked_for_types(tmp_path, text, field, found, expected):
    """A string where a list belongs is not a list of one, and a mapping's values are not dropped."""
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(TaskError) as info:
        Task.load(path)
    assert f"{field} must be {expected}; got {found}" in str(info.value) and "t.yaml" in str(info.value)


def test_completion_task_fields_round_trip_and_stop_is_checked(tmp_path):
    from diffuse_utils.tasks import DIE_PROMPT
    die = Task("die", [DIE_PROMPT], [f" {i}" for i in range(1, 21)], braces=False, completion=True, stop=".")
    assert Task.load(die.save(tmp_path / "die.yaml")) == die and die.responses[:2] == [" 1", " 2"]
    with pytest.raises(TaskError, match=r"stop text '\.' occurs inside the response ' 1\.5'"):
        Task("die", [DIE_PROMPT], [" 1.5", " 2"], braces=False, completion=True, stop=".")
    with pytest.raises(TaskError, match="stop is the empty string"):
        Task("die", [DIE_PROMPT], [" 1"], braces=False, completion=True, stop="")


RELEASE_RNG = {"request": "Generate a random number between 1 and 10. Output only the number between two curly "
                          "braces, like this: {number}. Don't output code.",
               "response": [""], "targets": [f"{{{i}}}" for i in range(1, 11)]}


def test_release_prompt_file_loads_unchanged(tmp_path):
    """The release's prompts/numbers/rng-0.json format: braced targets become answers with braces=True,
    the same responses; the name is the file's."""
    path = tmp_path / "rng-0.json"
    path.write_text(json.dumps(RELEASE_RNG))
    task = Task.load(path)
    assert task.name == "rng-0" and task.prompts == [RELEASE_RNG["request"]]
    assert task.targets == [str(i) for i in range(1, 11)] and task.responses == RELEASE_RNG["targets"]
    assert task.braces and task.end_of_turn and not task.completion and task.response_prefix == ""
    np.testing.assert_allclose(task.probabilities, 0.1)


def test_release_eos_weights_and_unbraced_targets(tmp_path):
    path = tmp_path / "bio.json"
    path.write_text(json.dumps({"request": "Write.", "response": "", "targets": ["{Ada}\n{F}", "{Bo}\n{M}"],
                                "weights": [3, 1], "eos": False}))
    task = Task.load(path)
    assert task.targets == ["{Ada}\n{F}", "{Bo}\n{M}"] and not task.braces and not task.end_of_turn
    np.testing.assert_allclose(task.probabilities, [0.75, 0.25])


def test_release_openings_become_pairs_with_split_weights():
    """Each target after each opening, the weight split evenly: sum over pairs of w/J * -log p equals
    the release's expected loss over its random draw of one opening per target."""
    from diffuse_utils.tasks import release_task
    task = release_task({"request": "Pick.", "response": ["", "Sure! "], "targets": ["{a}", "{b}"],
                         "weights": [1, 3]}, "pick")
    assert task.targets == ["{a}", "Sure! {a}", "{b}", "Sure! {b}"] and not task.braces
    np.testing.assert_allclose(task.probabilities, [0.125, 0.125, 0.375, 0.375])
    assert task.metadata["openings"] == ["", "Sure! "]


@pytest.mark.parametrize("data, message", [
    ({"request": "p", "response": [""], "targets": ["{a}"], "extra": 1}, r"unknown keys \['extra'\]"),
    ({"request": "p", "targets": ["{a}"]}, r"missing keys \['response'\]"),
    ({"request": "p", "response": [""], "targets": "{a}"}, "targets must be a list of strings; got str"),
    ({"request": "p", "response": 3, "targets": ["{a}"]}, "response must be a string or a list of strings; got int"),
    ({"request": "p", "response": [""], "targets": ["{a}"], "eos": "yes"}, "eos must be true or false; got str"),
    ({"request": "p", "response": [""], "targets": []}, "target list is empty"),
])
def test_bad_release_files_raise_naming_the_problem(tmp_path, data, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(TaskError, match=message) as info:
        Task.load(path)
    assert "bad.json" in str(info.value)
