"""One rule for valid answers in every chapter, and the generation cache's keys pinned to those on disk."""
import json
import math
from types import SimpleNamespace

import pytest
import torch

from diffuse_utils import BABYNAMES_PROMPT, Task, artifacts, load_family
from diffuse_utils.answers import answer_figures, canonicalizer, parse_braces, text_figures, valid_answers
from diffuse_utils.baselines import Method, Probe, build_probes, compare_probes
from diffuse_utils.evaluation import evaluate_family
from diffuse_utils.metrics import entropy
from diffuse_utils.suite import TaskFamily

from conftest import make_tiny_model

FIGURES = ["n", "parsed_rate", "valid_rate", "entropy_valid", "coverage_valid", "entropy_parsed", "coverage_parsed",
           "outside_share", "answers", "rejected"]


def test_answer_figures_count_junk_apart_and_drop_placeholders():
    figures = answer_figures(["1", "1", "2", "junk", None, " number "], ["1", "2"], targets=["1"],
                             prompt="Pick like this: {number}.")
    assert list(figures) == FIGURES
    assert figures["n"] == 6 and figures["parsed_rate"] == pytest.approx(5 / 6)
    assert figures["valid_rate"] == pytest.approx(3 / 6)
    assert figures["coverage_valid"] == 2 and figures["coverage_parsed"] == 4
    assert figures["entropy_valid"] == pytest.approx(entropy([2, 1]))
    assert figures["outside_share"] == pytest.approx(1 / 3) and figures["rejected"] == ["junk", " number "]
    assert math.isnan(answer_figures(["a"], None)["outside_share"])   # no targets given
    with pytest.raises(ValueError):
        answer_figures([], ["a"])


def test_valid_answers_take_a_set_a_function_or_nothing():
    assert valid_answers(["OLIVIA", "x", None], {"Olivia"}) == ["Olivia", None, None]
    assert valid_answers(["OLIVIA", "x"], canonicalizer(["Olivia"])) == ["Olivia", None]
    assert valid_answers(["OLIVIA", "Name"], None, prompt=BABYNAMES_PROMPT) == ["OLIVIA", None]
    assert text_figures(["{7}", "7"], ["7"])["valid_rate"] == 0.5 and parse_braces("{ 7 }") == "7"


def _serve(monkeypatch, texts: dict):
    """Make the generation cache draw ``texts[prompt]`` (its first ``n``) instead of sampling."""
    monkeypatch.setattr(artifacts, "sample_prompts",
                        lambda model, tokenizer, prompts, counts, *settings, **speed: [texts[p][:n] for p, n in zip(prompts, counts)])


def test_every_chapter_counts_the_same_generations_the_same_way(tokenizer, tmp_path, monkeypatch):
    """Chapter 1 and 3's path (text_figures over a family's checker), chapter 4's (evaluate_family)
    and chapter 6's (compare_probes) give the same figures for the same cached generations."""
    pick = Task("pick", ["Pick a letter."], ["a", "b"],
                metadata={"held_out_prompts": ["Choose a letter like this: {letter}."], "valid_answers": ["a", "b", "c"]})
    family = TaskFamily(name="letters", title="LETTERS", subtasks=[pick])
    prompt = pick.metadata["held_out_prompts"][0]
    texts = ["{a}", "Sure: {A}", "{c}", "{c}", "{zz}", "no braces", "{letter}", "{LETTER}", "{b}", "{ b. }"]
    _serve(monkeypatch, {prompt: texts})
    model = make_tiny_model(len(tokenizer))
    chapter_3 = text_figures(texts, family.checker("pick"), pick.targets, prompt)
    chapter_4 = evaluate_family(model, tokenizer, family, "ID", tmp_path, n_samples=len(texts), progress=False).iloc[0]
    probe = Probe(family.title, "pick", prompt, family.checker("pick"), pick.targets, False)
    chapter_6 = compare_probes(tmp_path, model, tokenizer, [probe], Method("tuned"), [len(texts)])[0]
    assert chapter_3["valid_rate"] == pytest.approx(6 / 10) and chapter_3["coverage_valid"] == 3
    for name in FIGURES:
        assert chapter_4[name] == pytest.approx(chapter_3[name]) and chapter_6[name] == pytest.approx(chapter_3[name]), name


def test_babynames_validity_is_case_insensitive_and_ignores_the_placeholder(tokenizer, tmp_path, monkeypatch):
    """Chapter 3's names table and chapter 6's BABYNAMES probe: the same rule, the same valid rate."""
    names = Task("babynames", [BABYNAMES_PROMPT], ["Olivia", "Emma"])
    texts = ["{Olivia}", "{olivia}", "{EMMA}", "{name}", "{Name}", "{Qwzx}", "{Liam}", "nothing"]
    _serve(monkeypatch, {BABYNAMES_PROMPT: texts})
    probe = next(p for p in build_probes(Task("rng", ["Pick."], ["1", "2"]), names, []) if p.task == "BABYNAMES")
    chapter_6 = compare_probes(tmp_path, make_tiny_model(len(tokenizer)), tokenizer, [probe], Method("tuned"),
                               [len(texts)])[0]
    chapter_3 = answer_figures([parse_braces(t) for t in texts], load_family("babynames").checker("babynames"),
                               names.targets, names.prompts[0])
    assert chapter_3["answers"] == ["Olivia", "Olivia", "Emma", "Liam"] and chapter_3["valid_rate"] == 0.5
    assert chapter_6["valid_rate"] == chapter_3["valid_rate"] and chapter_6["answers"] == chapter_3["answers"]


# Keys computed by the code before the cache became one function (evaluation.cached_samples_timed), for a
# model loaded from this name in float32: the files under artifacts/generations must keep their names.
PINNED = [(dict(), "base-b2904ea998cc-n100.json"),
          (dict(temperature=2.0, min_p=0.1), "base-67e8ef450e68-n100.json"),
          (dict(response_prefix="{"), "base-d89eadef0395-n100.json"),
          (dict(temperature=1.0, top_p=1.0, batch_size=7, completion=False, stop=None), "base-b2904ea998cc-n100.json")]


@pytest.mark.parametrize("settings, name", PINNED)
def test_generation_files_keep_the_names_they_had(settings, name, tmp_path, monkeypatch):
    model = SimpleNamespace(config=SimpleNamespace(_name_or_path="HuggingFaceTB/SmolLM2-135M-Instruct"),
                            dtype=torch.float32)
    _serve(monkeypatch, {"Pick a number.": ["{7}"] * 100})
    artifacts.cached_generations(tmp_path, model, None, ["Pick a number."], 100, label="base", seed=0,
                                 max_new_tokens=16, progress=False, **settings)
    assert [p.name for p in (tmp_path / "generations").iterdir()] == [name]
    stored = json.loads((tmp_path / "generations" / name).read_text())
    assert stored["config"]["adapter"] == "base" and stored["config"]["n"] == 100 and "batch_size" not in stored["config"]
