"""Chapter 8's runs (``remedy_runs``): each run hands the base model back, a fixed list
is measured at its two stops, chapter 7's runs are read and never tuned, the six-task
rows come in chapter 4's order, and the carried row and the left-out figures by hand."""

import numpy as np
import pandas as pd
import pytest
from conftest import make_tiny_model
from peft import PeftModel

from diffuse_utils import Task, TuneSettings, remedy_runs
from diffuse_utils.artifacts import cached_tune
from diffuse_utils.diagnostics import TrainingMonitor
from diffuse_utils.scoring import score_prompts
from diffuse_utils.suite import TaskFamily, held_out_task
from diffuse_utils.tuning import tune

NAMES = Task(
    "names",
    ["Pick a name."],
    ["Ann", "Bob", "Cy"],
    [3, 2, 1],
    metadata={"held_out": ["Dee"]},
)
COLOURS = Task(
    "colours",
    ["Pick a colour."],
    ["red", "blue"],
    metadata={"held_out_prompts": ["Name a colour.", "Say a colour."]},
)
VALID = Task("names-validation", ["Pick a name."], ["Ed", "Flo"])
SETTINGS = TuneSettings(passes=4, lr=3e-2, lora_rank=2)


def has_lora(model) -> bool:
    return any("lora_" in name for name, _ in model.named_modules())


def met_midway(tokenizer) -> float:
    """A gamma the run meets after its second update and not before."""
    model = make_tiny_model(len(tokenizer))
    history = tune(model, tokenizer, [NAMES], SETTINGS, progress=False)[1]
    excess = (history["loss"] / history["optimal_loss"] - 1).dropna().tolist()
    return (excess[1] + excess[2]) / 2


def make_bench(tokenizer, tmp_path, gamma=None):
    gamma = met_midway(tokenizer) if gamma is None else gamma
    model = make_tiny_model(len(tokenizer))
    monitor = TrainingMonitor(tokenizer, [NAMES, VALID], every=2)
    return remedy_runs.RemedyBench(tmp_path, model, tokenizer, monitor, gamma, 1)


class FakeMeasure:
    """A ``remedies.Evaluation`` stand-in: records what each row was asked."""

    share_under_p_star = 0.5

    def row(self, output_dir, model, tokenizer, label, updates, trained=None):
        tuned = isinstance(model, PeftModel) and has_lora(model)
        return {"run": label, "updates": updates, "trained": trained, "tuned": tuned}


def test_the_bench_needs_e_and_the_validation_names(tokenizer, tmp_path):
    monitor = TrainingMonitor(tokenizer, [NAMES], every=2)
    with pytest.raises(ValueError, match="E and the validation names"):
        remedy_runs.RemedyBench(tmp_path, None, tokenizer, monitor, 0.2, 2)


def test_runs_hand_the_base_model_back(tokenizer, tmp_path):
    bench = make_bench(tokenizer, tmp_path)
    history, folder = bench.tune(NAMES, SETTINGS, save_at=[3])
    assert not has_lora(bench.model)
    assert sorted(p.name for p in folder.iterdir()) == [
        f"update-{u}" for u in (0, 2, 3, 4)
    ]
    assert history["stepped"].sum() == 4
    with bench.checkpoint(folder, 3) as tuned:
        assert has_lora(tuned)
    assert not has_lora(bench.model)
    alone = tune(
        make_tiny_model(len(tokenizer)),
        tokenizer,
        [NAMES],
        SETTINGS,
        early_stop_gamma=bench.gamma,
        progress=False,
    )[1]
    assert bench.gamma_updates(NAMES, SETTINGS) == alone["stepped"].sum() < 4
    assert not has_lora(bench.model)


def test_a_fixed_list_is_measured_at_both_stops(tokenizer, tmp_path):
    bench = make_bench(tokenizer, tmp_path)
    rows, curve = bench.fixed_rows(FakeMeasure(), NAMES, "list", SETTINGS)
    assert curve["update"].tolist() == [0, 2, 4]
    assert curve["share_ratio"].tolist() == pytest.approx(
        (curve["held_out_share"] / 0.5).tolist()
    )
    best = curve["update"][curve["validation_mass"].idxmax()]  # patience 1 or run end
    first_fall = curve["validation_mass"].diff().iloc[1] <= 0
    expected = 0 if first_fall else best
    updates = bench.gamma_updates(NAMES, SETTINGS)
    assert rows == [
        {"run": "list, gamma stop", "updates": updates, "trained": NAMES.targets,
         "tuned": True},
        {"run": "list, validation stop", "updates": expected,
         "trained": NAMES.targets, "tuned": True},
    ]  # fmt: skip
    assert not has_lora(bench.model)


def test_a_fixed_list_that_never_meets_gamma_says_so(tokenizer, tmp_path):
    bench = make_bench(tokenizer, tmp_path, gamma=1e-9)
    rows, _ = bench.fixed_rows(FakeMeasure(), NAMES, "list", SETTINGS)
    assert rows[0]["run"] == "list, end, no gamma stop" and rows[0]["updates"] == 4


def test_chapter7_runs_are_read_never_tuned(tokenizer, tmp_path):
    bench = make_bench(tokenizer, tmp_path)
    p_star = pd.Series({"Ann": 0.4, "Bob": 0.3, "Cy": 0.2, "Dee": 0.1})
    lr_ranks = [(3e-2, 2), (1e-2, 2)]
    assert bench.chapter7_curves(NAMES, p_star, lr_ranks, passes=2) == {}
    assert not (tmp_path / "adapters").exists()
    monitor = TrainingMonitor(tokenizer, [NAMES], every=1)
    tuned, _ = cached_tune(
        tmp_path,
        bench.model,
        tokenizer,
        [NAMES],
        passes=2,
        lr=3e-2,
        lora_rank=2,
        early_stop_gamma=bench.gamma,
        monitor=monitor,
        progress=False,
    )
    tuned.unload()
    found = bench.chapter7_curves(NAMES, p_star, lr_ranks, passes=2)
    assert list(found) == ["lr 0.03, r 2"]
    # p*'s share on E: 0.1 / 1.0
    curve = found["lr 0.03, r 2"]
    assert curve["share_ratio"].tolist() == pytest.approx(
        (curve["held_out_share"] / 0.1).tolist()
    )


def test_left_out_rows_in_chapter_4s_order(tokenizer, tmp_path, monkeypatch):
    bench = make_bench(tokenizer, tmp_path)
    suite = [TaskFamily(n, n, [COLOURS]) for n in ("a", "b", "c")]
    trained = []

    def fake_adapter(output_dir, model, tok, families, settings, progress):
        trained.append(([f.name for f in families], settings))
        return PeftModel.__new__(PeftModel)

    monkeypatch.setattr(remedy_runs, "suite_adapter", fake_adapter)
    monkeypatch.setattr(remedy_runs, "adapter", _Same)
    monkeypatch.setattr(
        remedy_runs,
        "left_out_figures",
        lambda model, tok, family, width: {"entropy": family.name, "kl": 0.0},
    )
    runs = {"chapter 4": (suite, "s4"), "remedy": (suite[:2], "s8")}
    rows = bench.left_out_rows(suite, runs, ["b"])
    assert [(r["left out"], r["run"], r["entropy"]) for r in rows] == [
        ("b", "base model", "b"),
        ("b", "chapter 4", "b"),
        ("b", "remedy", "b"),
    ]
    assert trained == [(["a", "c"], "s4"), (["a"], "s8")]


class _Same:
    def __init__(self, made):
        self.made = made

    def __enter__(self):
        return self.made

    def __exit__(self, *exc):
        return False


def test_the_carried_row_by_hand():
    table = pd.DataFrame(
        {"share_ratio": [0.5, 0.9, 1.6]}, index=["a", "b", "c"]
    )  # |log r|: 0.69, 0.11, 0.47
    assert remedy_runs.carried_remedy(table, "b", {"a": 1, "b": 2}) == "b"
    assert remedy_runs.carried_remedy(table, "b", {"a": 1, "c": 2}) == "c"
    assert remedy_runs.carried_remedy(table, None, {"a": 1}) == "a"
    assert remedy_runs.carried_remedy(table, "b", {}) is None


def test_left_out_figures_are_means_over_held_out_prompts(tokenizer):
    model = make_tiny_model(len(tokenizer))
    subtasks = [
        COLOURS,
        Task("more", ["Pick one."], ["green"], metadata={"held_out_prompts": ["Go."]}),
    ]
    figures = remedy_runs.left_out_figures(
        model, tokenizer, TaskFamily("c", "c", subtasks)
    )
    rows = pd.concat(
        [score_prompts(model, tokenizer, held_out_task(t)) for t in subtasks]
    )
    assert len(rows) == 3  # one row a held-out prompt, three in all
    for key in ("entropy", "kl", "valid_mass"):
        assert figures[key] == pytest.approx(np.mean(rows[key]))
