import math

import pytest
import torch

from functools import partial

from diffuse_utils import leave_one_out_plan, load_suite
from diffuse_utils.answers import text_figures
from diffuse_utils.artifacts import cached_generations
from diffuse_utils.evaluation import evaluate_family, evaluate_suite, training_tasks
from diffuse_utils.suite import TaskFamily
from diffuse_utils.tasks import Task

from conftest import make_tiny_model


@pytest.fixture
def letters():
    pick = Task("pick", ["Pick a letter."], ["a", "b"], metadata={"held_out_prompts": ["Choose a letter: {letter}.", "Any letter?"],
                                                                  "valid_answers": ["a", "b", "c"]})
    vowel = Task("vowel", ["Pick a vowel."], ["a", "e"], metadata={"held_out_prompts": ["A vowel?"], "enumerable": True})
    return TaskFamily(name="letters", title="LETTERS", subtasks=[pick, vowel])


def test_answer_figures_count_only_valid_answers(letters):
    texts = ["{a}", "Sure: {A}", "{c}", "{c}", "{zz}", "no braces", "{letter}", "{b}"]
    figures = text_figures(texts, partial(letters.canonical, "pick"), letters.subtask("pick").targets,
                           prompt="Choose a letter: {letter}.")
    assert figures["valid_rate"] == 5 / 8  # a, A, c, c, b; 'zz' is junk and '{letter}' echoes the prompt
    assert figures["answers"] == ["a", "a", "c", "c", "b"]
    assert figures["coverage_valid"] == 3
    assert figures["entropy_valid"] == pytest.approx(-(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2)))
    assert figures["outside_share"] == pytest.approx(2 / 5)  # 'c' is valid but not a tuning target
    assert figures["coverage_parsed"] == 6  # a, A, c, zz, letter, b: junk would inflate diversity
    assert figures["rejected"] == ["zz", "letter"]


def test_leave_one_out_plan():
    suite = load_suite(["numbers", "fruits", "countries"])
    plan = leave_one_out_plan(suite)
    assert list(plan) == ["ID", "OOD-numbers", "OOD-fruits", "OOD-countries"]
    assert [f.name for f in plan["OOD-fruits"]] == ["numbers", "countries"]
    assert len(training_tasks(plan["ID"])) == 4 + 1 + 6
    with pytest.raises(ValueError, match="at least two task families"):
        leave_one_out_plan(suite[:1])


def test_evaluate_family_rows_exact_columns_and_cache(tokenizer, letters, tmp_path):
    model = make_tiny_model(len(tokenizer))
    frame = evaluate_family(model, tokenizer, letters, "base", tmp_path, n_samples=6, max_new_tokens=3,
                            progress=False)
    assert list(zip(frame["subtask"], frame["prompt"])) == [("pick", 0), ("pick", 1), ("vowel", 0)]
    assert frame["n"].tolist() == [6, 6, 6]
    assert frame["exact_entropy"].isna().tolist() == [True, True, False]  # only 'vowel' is enumerable
    assert 0 <= frame.loc[2, "exact_entropy"] <= math.log(2) + 1e-9
    assert len(list((tmp_path / "generations").glob("base-*.json"))) == 3
    again = evaluate_family(model, tokenizer, letters, "base", tmp_path, n_samples=6, max_new_tokens=3,
                            progress=False)
    assert again.drop(columns="answers").equals(frame.drop(columns="answers"))
    assert (frame["sample_seconds"] > 0).all()  # recorded when sampled, read back from the cache


def test_evaluate_suite_draws_every_family_together_then_reads_the_cache(tokenizer, letters, tmp_path,
                                                                         monkeypatch):
    """One sampler call for every held-out prompt of every family (rows of several prompts share
    a batch); the per-family figures are then read from the cache, exactly as evaluate_family's."""
    import diffuse_utils.artifacts as artifacts
    model = make_tiny_model(len(tokenizer))
    other = TaskFamily(name="more", title="MORE", subtasks=[
        Task("odd", ["Pick."], ["x", "y"], metadata={"held_out_prompts": ["Any?"]})])
    calls = []
    real = artifacts.sample_prompts
    monkeypatch.setattr(artifacts, "sample_prompts", lambda m, t, prompts, *a, **k: (
        calls.append(list(prompts)), real(m, t, prompts, *a, **k))[1])
    frame = evaluate_suite(model, tokenizer, [letters, other], "base", tmp_path, n_samples=4,
                           max_new_tokens=3, progress=False)
    assert calls == [["Choose a letter: {letter}.", "Any letter?", "A vowel?", "Any?"]]
    assert frame["run"].unique().tolist() == ["base"]
    assert frame["family"].tolist() == ["letters"] * 3 + ["more"]
    alone = evaluate_family(model, tokenizer, other, "base", tmp_path, n_samples=4, max_new_tokens=3,
                            progress=False)
    assert len(calls) == 1  # read back from the cache, not drawn again
    together = frame[frame["family"] == "more"][alone.columns].reset_index(drop=True)
    assert alone.drop(columns="answers").equals(together.drop(columns="answers"))


def test_generations_are_keyed_by_adapter_weights(tokenizer, tmp_path):
    """A re-tuned adapter under the same label never gets the old adapter's cached generations."""
    import torch
    from diffuse_utils.artifacts import adapter_fingerprint
    from diffuse_utils.tuning import add_lora
    model = add_lora(make_tiny_model(len(tokenizer)), lora_rank=2)
    first = adapter_fingerprint(model)
    assert len(first) == 12 and adapter_fingerprint(make_tiny_model(len(tokenizer))) == "base"
    cached_generations(tmp_path, model, tokenizer, ["Pick."], 2, label="tuned", max_new_tokens=2, progress=False)
    with torch.no_grad():
        next(p for n, p in model.named_parameters() if "lora_B" in n).add_(1.0)
    assert adapter_fingerprint(model) != first
    cached_generations(tmp_path, model, tokenizer, ["Pick."], 2, label="tuned", max_new_tokens=2, progress=False)
    assert len(list((tmp_path / "generations").glob("tuned-*.json"))) == 2


def test_generations_key_changes_with_decoding_only(tokenizer, tmp_path):
    model = make_tiny_model(len(tokenizer))
    settings = dict(label="m", max_new_tokens=2, progress=False)
    plain = cached_generations(tmp_path, model, tokenizer, ["Pick."], 3, **settings)
    assert cached_generations(tmp_path, model, tokenizer, ["Pick."], 3, temperature=1.0, top_p=1.0, batch_size=1,
                              **settings)[0] == plain[0]
    cached_generations(tmp_path, model, tokenizer, ["Pick."], 3, temperature=2.0, **settings)
    cached_generations(tmp_path, model, tokenizer, ["Pick."], 3, temperature=2.0, min_p=0.1, **settings)
    cached_generations(tmp_path, model, tokenizer, ["Pick."], 3, stop=".", **settings)
    assert len(list((tmp_path / "generations").glob("m-*.json"))) == 4


def test_cached_tune_records_its_tuning_time(tokenizer, tmp_path):
    from diffuse_utils.artifacts import cached_tune
    task = Task("two", ["Pick."], ["a", "b"])
    settings = dict(passes=2, lr=1e-2, lora_rank=2, progress=False)
    _, history = cached_tune(tmp_path, make_tiny_model(len(tokenizer)), tokenizer, [task], **settings)
    _, again = cached_tune(tmp_path, make_tiny_model(len(tokenizer)), tokenizer, [task], **settings)
    assert history.attrs["tune_seconds"] > 0
    assert again.attrs["tune_seconds"] == pytest.approx(history.attrs["tune_seconds"])
    assert again.equals(history)


def test_an_early_stop_sweep_tunes_once_and_saves_what_each_threshold_would(tokenizer, tmp_path, monkeypatch):
    from diffuse_utils import artifacts
    from peft import get_peft_model_state_dict
    task = Task("four", ["Pick."], ["a", "b", "c", "d"], [0.4, 0.3, 0.2, 0.1])
    settings = dict(passes=12, lr=3e-2, lora_rank=2, update_per="pass", progress=False)
    full = artifacts.tune(make_tiny_model(len(tokenizer)), tokenizer, [task], **settings)[1]
    timeless = lambda history: history.drop(columns=["seconds", "diagnostic_seconds"])
    excess = (full["loss"] / full["optimal_loss"] - 1).tolist()
    assert excess[0] > excess[5] > excess[10]                     # it learns, so thresholds are met in turn
    low, middle, high = (excess[10] + excess[11]) / 2, (excess[5] + excess[6]) / 2, 10 * excess[0]
    artifacts.cached_tune(tmp_path / "sweep", make_tiny_model(len(tokenizer)), tokenizer, [task],
                          early_stop_gamma=low, also_save_gammas=[high, middle], **settings)
    for gamma in (high, middle, low):
        steps = next(i for i, e in enumerate(excess) if e <= gamma) + 1   # a run stops at the first step within gamma
        alone, history = artifacts.cached_tune(tmp_path / "alone", make_tiny_model(len(tokenizer)), tokenizer, [task],
                                               early_stop_gamma=gamma, **settings)
        monkeypatch.setattr(artifacts, "tune", lambda *a, **k: pytest.fail("the sweep should have saved this"))
        loaded, saved = artifacts.cached_tune(tmp_path / "sweep", make_tiny_model(len(tokenizer)), tokenizer, [task],
                                              early_stop_gamma=gamma, **settings)
        monkeypatch.undo()
        assert timeless(saved).equals(timeless(history)) and len(saved) == steps
        for name, tensor in get_peft_model_state_dict(alone).items():
            assert torch.equal(get_peft_model_state_dict(loaded)[name], tensor), name
    with pytest.raises(ValueError, match="an early_stop_gamma below all of them"):
        artifacts.cached_tune(tmp_path / "bad", make_tiny_model(len(tokenizer)), tokenizer, [task],
                              early_stop_gamma=high, also_save_gammas=[low], **settings)


def test_a_threshold_the_run_never_reaches_is_saved_as_the_whole_run(tokenizer, tmp_path, monkeypatch):
    """Chapter 7 reads chapter 3's runs at a looser checkpoint: where the run never got that close
    (the release's rate), the run that would stop there is the whole run, saved without tuning again."""
    from diffuse_utils import artifacts
    from peft import get_peft_model_state_dict
    task = Task("four", ["Pick."], ["a", "b", "c", "d"], [0.4, 0.3, 0.2, 0.1])
    settings = dict(passes=3, lr=1e-6, lora_rank=2, update_per="pass", progress=False)  # barely moves
    tuned, history = artifacts.cached_tune(tmp_path, make_tiny_model(len(tokenizer)), tokenizer, [task],
                                           early_stop_gamma=1e-6, also_save_gammas=[2e-6], **settings)
    assert len(history) == 3                                       # ran every pass: neither was met
    monkeypatch.setattr(artifacts, "tune", lambda *a, **k: pytest.fail("should have been saved"))
    loaded, saved = artifacts.cached_tune(tmp_path, make_tiny_model(len(tokenizer)), tokenizer, [task],
                                          early_stop_gamma=2e-6, **settings)
    assert saved.equals(history)
    for name, tensor in get_peft_model_state_dict(tuned).items():
        assert torch.equal(get_peft_model_state_dict(loaded)[name], tensor), name


def test_samples_drawn_together_are_cached_per_prompt(tokenizer, tmp_path, monkeypatch):
    from diffuse_utils import artifacts, sample
    model = make_tiny_model(len(tokenizer))
    settings = dict(max_new_tokens=3, batch_size=8, progress=False, temperature=1.5)
    cached_generations(tmp_path, model, tokenizer, ["Pick."], 6, label="one", **settings)   # already cached
    texts, seconds = cached_generations(tmp_path, model, tokenizer, ["Pick.", "Pick a letter.", "Go"], [4, 3, 5],
                                        label="many", **settings)
    assert texts == [sample(model, tokenizer, p, n=n, seed=0, **settings)
                     for p, n in (("Pick.", 4), ("Pick a letter.", 3), ("Go", 5))]
    assert len(list((tmp_path / "generations").glob("many-*.json"))) == 2   # the cached prompt is not drawn again
    monkeypatch.setattr(artifacts, "sample_prompts", lambda *a, **k: pytest.fail("should be served from the cache"))
    again, later = cached_generations(tmp_path, model, tokenizer, ["Go"], 5, label="later", **settings)
    assert again == [texts[2]] and later[0] == pytest.approx(seconds[2])
    assert seconds[1] / seconds[2] == pytest.approx(3 / 5)   # time shared by number of samples


def test_generations_serve_a_prefix_of_a_larger_draw_under_any_label(tokenizer, tmp_path, monkeypatch):
    from diffuse_utils import artifacts, sample
    model = make_tiny_model(len(tokenizer))
    settings = dict(max_new_tokens=3, batch_size=4, progress=False)
    (five,), (seconds,) = cached_generations(tmp_path, model, tokenizer, ["Pick."], 5, label="chapter-4", **settings)

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled although a larger draw was cached")
    monkeypatch.setattr(artifacts, "sample_prompts", no_sampling)
    (three,), (three_seconds,) = cached_generations(tmp_path, model, tokenizer, ["Pick."], 3, label="chapter-6",
                                                    **settings)
    assert three == five[:3] and three_seconds == pytest.approx(seconds * 3 / 5)
    with pytest.raises(AssertionError, match="sampled although"):   # more than was cached, or other settings
        cached_generations(tmp_path, model, tokenizer, ["Pick."], 6, label="chapter-6", **settings)
    with pytest.raises(AssertionError, match="sampled although"):
        cached_generations(tmp_path, model, tokenizer, ["Pick."], 3, label="chapter-6", temperature=2.0, **settings)
    monkeypatch.undo()
    assert sample(model, tokenizer, "Pick.", n=3, batch_size=1, max_new_tokens=3,
                  progress=False) == three   # what sampling gives anyway
