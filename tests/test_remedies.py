"""Chapter 8's remedies and measures (``remedies``, ``unseen``): held-out figures against
hand-computed cases and against direct sums of exact scores, the validation stop, the verdict,
the task builders, checkpointed runs and a row of the chapter's table."""
import numpy as np
import pandas as pd
import pytest
import torch
from peft import get_peft_model_state_dict

from diffuse_utils import Task, TuneSettings, data, remedies, target_logprobs, unseen
from diffuse_utils.diagnostics import TrainingMonitor, task_diagnostics, terms
from diffuse_utils.tuning import tune

from conftest import make_tiny_model


def test_held_out_share_and_mass_by_hand():
    assert unseen.held_out_share(1.0, 150, 50) == pytest.approx(0.25)
    assert unseen.held_out_share(0.5, 100, 100) == pytest.approx(50 / 150)
    # 100 targets holding mass 0.4, held-out names half as likely each: 50 * 0.5 * 0.004
    assert unseen.held_out_mass(0.5, -np.log(0.4), 100, 50) == pytest.approx(0.1)
    shares = unseen.held_out_share(np.array([0.0, 1.0]), 3, 1)
    assert shares.tolist() == pytest.approx([0.0, 0.25])


def test_p_star_share_by_hand():
    p_star = pd.Series({"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.1})
    assert unseen.p_star_share(p_star, ["a", "b"], ["c"]) == pytest.approx(0.2 / 0.9)
    assert unseen.p_star_share(p_star, ["a"], ["c", "zz"]) == pytest.approx(0.2 / 0.6)


def test_held_out_figures_are_the_exact_sums(tokenizer):
    """From the monitor's memorization ratio and valid mass, the share and mass of the
    held-out names equal their probabilities summed directly."""
    model = make_tiny_model(len(tokenizer))
    task = Task("names", ["Pick a name."], ["Ann", "Bob", "Cy"], [3, 2, 1],
                metadata={"held_out": ["Dee", "Ed"]})
    held = Task("held", task.prompts, ["Dee", "Ed"])
    with torch.no_grad():
        measured = task_diagnostics(model, tokenizer, task)
    q_targets = np.exp(target_logprobs(model, tokenizer, task).to_numpy()).sum()
    q_held = np.exp(target_logprobs(model, tokenizer, held).to_numpy()).sum()
    share = unseen.held_out_share(measured["memorization"], 3, 2)
    mass = unseen.held_out_mass(measured["memorization"], measured["neg_log_mass"], 3, 2)
    assert share == pytest.approx(q_held / (q_held + q_targets), rel=1e-4)
    assert mass == pytest.approx(q_held, rel=1e-4)


def test_run_curve_adds_the_held_out_columns():
    task = Task("names", ["Pick."], ["a", "b"], metadata={"held_out": ["c", "d"]})
    history = pd.DataFrame({"update": [0, 1, 2], "L/names": [4.0, np.nan, 2.0],
                            "H/names": [1.0, np.nan, 1.0], "KL/names": [1.0, np.nan, 0.5],
                            "neg_log_mass/names": [2.0, np.nan, 0.5],
                            "memorization/names": [1.0, np.nan, 0.5]})
    curve = unseen.run_curve(history, task, share_under_p_star=0.25)
    assert curve["update"].tolist() == [0, 2]
    assert curve["held_out_share"].tolist() == pytest.approx([0.5, 1 / 3])
    assert curve["share_ratio"].tolist() == pytest.approx([2.0, 4 / 3])
    assert curve["held_out_mass"].tolist() == pytest.approx(
        [np.exp(-2.0), 0.5 * np.exp(-0.5)])
    assert curve["L / H"].tolist() == [4.0, 2.0]
    history["neg_log_mass/valid"] = [np.log(4), np.nan, np.log(2)]
    history["L/valid"] = [1.0, np.nan, 1.0]
    curve = unseen.run_curve(history, task, 0.25, validation="valid")
    assert curve["validation_mass"].tolist() == pytest.approx([0.25, 0.5])


@pytest.mark.parametrize("values, patience, expected", [
    ([1, 3, 2, 2.5, 4], 2, {"best": 5, "stopped": 15}),
    ([1, 3, 2, 2.5, 4], 1, {"best": 5, "stopped": 10}),
    ([1, 2, 3, 4, 5], 2, {"best": 20, "stopped": None}),
    ([5, 5, 5, 5, 5], 3, {"best": 0, "stopped": 15}),     # equal is no improvement
])
def test_validation_stop_by_hand(values, patience, expected):
    curve = pd.DataFrame({"update": [0, 5, 10, 15, 20], "held_out_mass": values})
    assert unseen.validation_stop(curve, patience=patience) == expected


def test_validation_stop_refuses_nonsense():
    with pytest.raises(ValueError, match="patience"):
        unseen.validation_stop(pd.DataFrame({"update": [0], "held_out_mass": [1]}), patience=0)
    with pytest.raises(ValueError, match="no measured updates"):
        unseen.validation_stop(pd.DataFrame({"update": [], "held_out_mass": []}))


def test_generation_figures_by_hand():
    texts = ["{Ann}", "{cy}", "{Bob}", "{zz}", "no braces", "{Cy}"]
    p_star = pd.Series({"Ann": 0.5, "Bob": 0.3, "Cy": 0.2})
    figures = unseen.generation_figures(texts, ["Ann", "Bob", "Cy"], ["Ann"], ["Cy"], p_star)
    assert figures["valid_rate"] == pytest.approx(4 / 6)        # Ann, cy, Bob, Cy
    assert figures["outside_share"] == pytest.approx(3 / 4)     # all but Ann
    assert figures["sampled_share"] == pytest.approx(2 / 4)    # cy and Cy
    assert figures["sampled_ratio"] == pytest.approx(0.5 / 0.2)
    assert figures["sampled_share_se"] == pytest.approx(np.sqrt(0.5 * 0.5 / 4))
    with_e = unseen.generation_figures(texts, ["Ann", "Bob", "Cy"], None, ["Cy"], p_star,
                                       evaluation=["Ann", "Cy"])
    assert with_e["sampled_e_ratio"] == pytest.approx((3 / 4) / 0.7)
    assert np.isnan(with_e["outside_share"])


def _table():
    return pd.DataFrame({
        "share_ratio": [0.1, 0.5, 2.2, 0.3, 0.6],
        "valid_rate": [0.9, 0.95, 0.99, 0.5, 0.9],
        "outside_share": [0.3, 0.45, np.nan, 0.6, 0.55],
        "knowledge_change": [-2.0, -3.0, -1.0, 0.0, -6.0],
        "fixed_list": [True, True, False, True, True],
    }, index=["fixed, gamma", "fixed, validation", "fresh", "fixed, early", "fixed, bigger"])


def test_verdict_picks_the_nearest_to_p_star_at_no_lower_valid_rate():
    # |log r|: 0.5 -> 0.69, 2.2 -> 0.79, 0.3 -> 1.20 (valid rate too low anyway), 0.6 -> 0.51
    found = unseen.verdict(_table(), "fixed, gamma")
    assert found["best"] == "fixed, bigger"
    assert found["majority"] == ["fixed, early", "fixed, bigger"]
    assert "fixed, bigger" in found["sentence"] and "0.60 of p*'s share" in found["sentence"]
    table = _table().drop(index="fixed, bigger")
    assert unseen.verdict(table, "fixed, gamma")["best"] == "fixed, validation"


def test_verdict_says_when_no_remedy_qualifies():
    table = _table().assign(valid_rate=[0.99, 0.5, 0.5, 0.5, 0.5], outside_share=0.2)
    found = unseen.verdict(table, "fixed, gamma")
    assert found["best"] is None and found["majority"] == []
    assert found["nearest"] == "fixed, bigger"   # 0.6: |log| 0.51, at any valid rate
    assert found["sentence"].startswith("No remedy brings")
    assert "the nearest is fixed, bigger: 0.60 of p*'s share" in found["sentence"]
    assert "at most 0.20" in found["sentence"]


def test_p_star_task_leaves_out_the_held_out_names_and_weights_by_births():
    counts = remedies.ssa_name_counts()
    task = remedies.p_star_task(["Emma", "Liam"], min_count=10_000)
    expected = counts[(counts >= 10_000) & ~counts.index.isin(["Emma", "Liam"])]
    assert task.targets == list(expected.index) and "Emma" not in task.targets
    assert task.probabilities == pytest.approx((expected / expected.sum()).to_numpy())
    assert task.metadata["held_out"] == ["Emma", "Liam"]
    assert len(remedies.p_star_task([]).targets) == len(data.ssa_name_distribution())


def test_validation_names_are_apart_from_targets_and_held_out_names():
    names = data.babynames_task(20, seed=0)
    validation = remedies.validation_task(names, seed=0)
    held_out = names.metadata["held_out"]
    assert validation.name == "babynames-validation" and len(validation.targets) == len(held_out)
    assert not set(validation.targets) & {*names.targets, *held_out}
    p_star = data.ssa_name_distribution()
    assert validation.probabilities == pytest.approx(
        (p_star[validation.targets] / p_star[validation.targets].sum()).to_numpy())
    evaluation = remedies.evaluation_task(names, held_out)
    assert (evaluation.name, evaluation.targets, evaluation.weights) == (
        "babynames", names.targets, names.weights)
    assert evaluation.metadata == {"held_out": held_out}


def test_drawn_lists_are_nested_and_the_first_is_chapter_3s():
    names = data.babynames_task(200, seed=0)
    held_out = names.metadata["held_out"]
    first = remedies.drawn_task(held_out, 200, seed=0)
    assert (first.targets, first.weights) == (names.targets, names.weights)
    larger = remedies.drawn_task(held_out, 1000, seed=0)
    assert sum(larger.weights) == 1000 and not set(held_out) & set(larger.targets)
    assert set(first.targets) <= set(larger.targets)


def test_checkpoints_are_the_adapters_of_shorter_runs(tokenizer, tmp_path, monkeypatch):
    from diffuse_utils import artifacts
    task = Task("names", ["Pick a name."], ["Ann", "Bob", "Cy"], [3, 2, 1],
                metadata={"held_out": ["Dee"]})
    monitor = TrainingMonitor(tokenizer, [task], every=2)
    settings = TuneSettings(passes=4, lr=3e-2, lora_rank=2)
    model = make_tiny_model(len(tokenizer))
    tuned, history, folder = remedies.checkpointed_tune(tmp_path, model, tokenizer, [task],
                                                        settings, monitor)
    assert sorted(p.name for p in folder.iterdir()) == ["update-0", "update-2", "update-4"]
    assert terms(history, "names")["update"].tolist() == [0, 2, 4]
    model = tuned.unload()
    short, _ = tune(make_tiny_model(len(tokenizer)), tokenizer, [task], passes=2, lr=3e-2,
                    lora_rank=2, progress=False)
    loaded = remedies.load_checkpoint(model, folder, 2)
    for name, tensor in get_peft_model_state_dict(short).items():
        assert torch.equal(get_peft_model_state_dict(loaded)[name], tensor), name
    model = loaded.unload()
    monkeypatch.setattr(artifacts, "tune", lambda *a, **k: pytest.fail("should be cached"))
    _, again, same = remedies.checkpointed_tune(tmp_path, model, tokenizer, [task], settings,
                                                monitor)
    assert same == folder and again.equals(history)
    with pytest.raises(FileNotFoundError, match="saved: \\['update-0', 'update-2', 'update-4'\\]"):
        remedies.load_checkpoint(model, folder, 3)


def test_saved_history_reads_a_cached_run_and_tunes_nothing(tokenizer, tmp_path):
    from diffuse_utils.artifacts import cached_tune, saved_history
    task = Task("two", ["Pick."], ["a", "b"])
    model = make_tiny_model(len(tokenizer))
    assert saved_history(tmp_path, model, [task], passes=2, lr=1e-2) is None
    assert not (tmp_path / "adapters").exists()
    tuned, history = cached_tune(tmp_path, model, tokenizer, [task], passes=2, lr=1e-2,
                                 progress=False)
    model = tuned.unload()
    read = saved_history(tmp_path, model, [task], passes=2, lr=1e-2)
    assert read.drop(columns=["seconds"]).equals(
        pd.read_csv(tmp_path / "adapters" / next(
            p.name for p in (tmp_path / "adapters").iterdir()) / "history.csv").drop(
            columns=["seconds"]))
    assert len(read) == len(history)
    assert saved_history(tmp_path, model, [task], passes=3, lr=1e-2) is None


def test_a_run_without_early_stop_saves_the_adapters_of_the_thresholds_it_passes(
        tokenizer, tmp_path, monkeypatch):
    from diffuse_utils import artifacts
    task = Task("four", ["Pick."], ["a", "b", "c", "d"], [0.4, 0.3, 0.2, 0.1])
    settings = TuneSettings(passes=12, lr=3e-2, lora_rank=2, update_per="pass")
    full = tune(make_tiny_model(len(tokenizer)), tokenizer, [task], settings, progress=False)[1]
    excess = (full["loss"] / full["optimal_loss"] - 1).tolist()
    gamma = (excess[5] + excess[6]) / 2
    _, run = artifacts.cached_tune(tmp_path, make_tiny_model(len(tokenizer)), tokenizer, [task],
                                   settings, also_save_gammas=[gamma], progress=False)
    assert len(run) == 12                                  # no early stop: every pass ran
    alone, history = tune(make_tiny_model(len(tokenizer)), tokenizer, [task], settings,
                          early_stop_gamma=gamma, progress=False)
    monkeypatch.setattr(artifacts, "tune", lambda *a, **k: pytest.fail("should be saved"))
    loaded, saved = artifacts.cached_tune(tmp_path, make_tiny_model(len(tokenizer)), tokenizer,
                                          [task], settings, early_stop_gamma=gamma)
    assert len(saved) == len(history) < 12
    for name, tensor in get_peft_model_state_dict(alone).items():
        assert torch.equal(get_peft_model_state_dict(loaded)[name], tensor), name


def test_checkpoints_where_another_run_stopped(tokenizer, tmp_path):
    task = Task("names", ["Pick a name."], ["Ann", "Bob"], metadata={"held_out": ["Cy"]})
    monitor = TrainingMonitor(tokenizer, [task], every=2)
    _, history, folder = remedies.checkpointed_tune(
        tmp_path, make_tiny_model(len(tokenizer)), tokenizer, [task],
        TuneSettings(passes=4, lr=3e-2, lora_rank=2), monitor, save_at=[3])
    assert sorted(p.name for p in folder.iterdir()) == [f"update-{u}" for u in (0, 2, 3, 4)]
    assert terms(history, "names")["update"].tolist() == [0, 2, 3, 4]


def test_exact_figures_agree_with_a_monitored_curve(tokenizer):
    model = make_tiny_model(len(tokenizer))
    task = Task("names", ["Pick a name."], ["Ann", "Bob", "Cy"], [3, 2, 1],
                metadata={"held_out": ["Dee", "Ed"]})
    _, history = tune(model, tokenizer, [task], passes=2, lr=3e-2, lora_rank=2, progress=False,
                      monitor=TrainingMonitor(tokenizer, [task], every=1))
    tuned = _
    now = unseen.exact_figures(tuned, tokenizer, task, 0.5)
    last = unseen.run_curve(history, task, 0.5).iloc[-1]
    for key in ("L / H", "memorization", "held_out_share", "share_ratio", "held_out_mass"):
        assert now[key] == pytest.approx(last[key], rel=1e-5), key


def test_remedied_suite_swaps_the_babynames_targets_only():
    from diffuse_utils import load_suite
    suite = load_suite(["babynames", "numbers"])
    names = suite[0].subtasks[0]
    p_star = remedies.p_star_task(names.metadata["held_out"], min_count=5000)
    changed = remedies.remedied_suite(suite, p_star)
    swapped = changed[0].subtasks[0]
    assert (swapped.targets, swapped.weights) == (p_star.targets, p_star.weights)
    assert (swapped.name, swapped.prompts, swapped.metadata) == (
        names.name, names.prompts, names.metadata)
    assert changed[1] == suite[1] and suite[0].subtasks[0].targets == names.targets


def test_an_evaluation_row_is_measured_once_per_adapter(tokenizer, tmp_path, monkeypatch):
    from diffuse_utils import SampleSettings
    task = Task("babynames", ["Pick a name."], ["Ann", "Bob"], metadata={"held_out": ["Cy"]})
    p_star = pd.Series({"Ann": 0.5, "Bob": 0.3, "Cy": 0.2})
    evaluation = remedies.Evaluation(task, p_star, ["Ann", "Bob", "Cy"],
                                   [("France", "Paris"), ("Spain", "Madrid")], None,
                                   SampleSettings(max_new_tokens=3), n_names=4)
    assert evaluation.share_under_p_star == pytest.approx(0.2)
    model = make_tiny_model(len(tokenizer))
    row = evaluation.row(tmp_path, model, tokenizer, "base", 0, trained=["Ann"])
    assert (row["run"], row["updates"], row["fixed_list"], row["n"]) == ("base", 0, True, 4)
    assert 0 <= row["knowledge"] <= 1 and row["share_ratio"] == pytest.approx(
        row["held_out_share"] / 0.2)
    monkeypatch.setattr(remedies, "exact_figures", lambda *a: pytest.fail("cached"))
    again = evaluation.row(tmp_path, model, tokenizer, "base", 0)
    assert again["fixed_list"] is False and np.isnan(again["outside_share"])
    differ = ["fixed_list", "outside_share"]
    assert pd.Series(again).drop(differ).equals(pd.Series(row).drop(differ))


def test_memorization_at_a_loss_by_hand():
    curve = pd.DataFrame({"L / H": [3.0, 2.0, 1.0], "memorization": [0.8, 0.4, 0.1]})
    assert unseen.memorization_at(curve, 2.5) == pytest.approx(0.6)
    assert unseen.memorization_at(curve, 1.0) == pytest.approx(0.1)
    assert unseen.memorization_at(curve, 3.5) == pytest.approx(0.8)   # the first row is already there
    assert np.isnan(unseen.memorization_at(curve, 0.5))
