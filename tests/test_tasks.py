import json
import math

import numpy as np
import pytest

from diffuse_utils import Task, TaskError


def test_uniform_by_default_and_responses_have_braces():
    task = Task("t", "Pick", ["1", "2", "3", "4"])
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
