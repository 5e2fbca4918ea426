"""Prompt files of the paper's release load as tasks, score, and load as a family from a folder."""
import json

import numpy as np
import pytest
import torch

import diffuse_utils as du
from diffuse_utils.scoring import naive_logprobs

from conftest import make_tiny_model

RNG_REQUEST = ("Generate a random number between 1 and 10. Output only the number between two curly braces, like "
               "this: {number}. Don't output code.")


def write_release_folder(folder):
    """Two files in the release's format (prompts/numbers/rng-0.json and a weighted, eos-free one)."""
    folder.mkdir()
    (folder / "rng-0.json").write_text(json.dumps(
        {"request": RNG_REQUEST, "response": [""], "targets": [f"{{{i}}}" for i in range(1, 11)]}, indent=2))
    (folder / "even-0.json").write_text(json.dumps(
        {"request": "Pick an even number from 2 to 6, between curly braces.", "response": "",
         "targets": ["{2}", "{4}", "{6}"], "weights": [1, 1, 2], "eos": False}))
    return folder


def test_release_file_scores_like_the_task_written_by_hand(tokenizer, tmp_path):
    """Same prompt, same targets, same ids: the scores equal full-sequence scores of the chat
    prompt followed by '{n}<|im_end|>'."""
    task = du.Task.load(write_release_folder(tmp_path / "numbers") / "rng-0.json")
    model = make_tiny_model(len(tokenizer))
    by_hand = du.Task("rng", [RNG_REQUEST], [str(i) for i in range(1, 11)])
    assert du.encode_task(tokenizer, task).target_ids == du.encode_task(tokenizer, by_hand).target_ids
    prompt = du.encode_prompt(tokenizer, RNG_REQUEST)
    targets = [tokenizer(f"{{{i}}}<|im_end|>", add_special_tokens=False)["input_ids"] for i in range(1, 11)]
    with torch.no_grad():
        reference = naive_logprobs(model, prompt, targets).numpy()
    np.testing.assert_allclose(du.target_logprobs(model, tokenizer, task).to_numpy(), reference, atol=1e-5)


def test_eos_false_scores_the_target_alone(tokenizer, tmp_path):
    task = du.Task.load(write_release_folder(tmp_path / "numbers") / "even-0.json")
    encoded = du.encode_task(tokenizer, task)
    assert [tokenizer.decode(ids) for ids in encoded.target_ids] == ["{2}", "{4}", "{6}"]
    np.testing.assert_allclose(task.probabilities, [0.25, 0.25, 0.5])


def test_release_folder_loads_as_a_family(tmp_path):
    family = du.load_family(write_release_folder(tmp_path / "numbers"))
    assert family.name == "numbers" and [t.name for t in family.subtasks] == ["even-0", "rng-0"]
    rng = family.subtask("rng-0")
    assert rng.metadata["held_out_prompts"] == [RNG_REQUEST] and rng.metadata["enumerable"]
    assert family.canonical("rng-0", " 7 ") == "7" and family.canonical("rng-0", "11") is None
    from diffuse_utils.suite import held_out_task
    assert held_out_task(family.subtask("even-0")).end_of_turn is False  # every field survives
    with pytest.raises(du.TaskError, match="no .json prompt files"):
        du.load_family(tmp_path)
