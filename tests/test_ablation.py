"""Chapter 7's tools: cached measurements, LoRA doses, threshold crossings, the defaults
rules, the runs (BABYNAMES at several rates and ranks, six-task schedules) on a tiny
model, their diagnostics, and the format probes (exact end-of-turn probability, sampling
with the end of turn held)."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from peft import LoraConfig, get_peft_model

from diffuse_utils import ablation, ablation_runs, format_probes
from diffuse_utils.artifacts import adapter_fingerprint, cached_measure
from diffuse_utils.decoding import SampleSettings
from diffuse_utils.encoding import encode_prompt, end_of_turn_ids
from diffuse_utils.sampling import sample
from diffuse_utils.schedule import TuneSettings
from diffuse_utils.suite import TaskFamily
from diffuse_utils.tasks import Task

from conftest import make_tiny_model


@pytest.fixture
def lora_model(tiny_model):
    """The tiny model with a LoRA adapter whose B matrices are not zero (so it changes outputs)."""
    torch.manual_seed(0)
    model = get_peft_model(tiny_model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    return model.eval()


def _logits(model, tokenizer):
    ids = torch.tensor([encode_prompt(tokenizer, "Pick a number.")])
    with torch.no_grad():
        return model(input_ids=ids).logits[0, -1]


def test_cached_measure_computes_once_and_keys_by_adapter_and_settings(tmp_path, tiny_model, lora_model):
    calls = []

    def compute():
        calls.append(1)
        return {"value": np.float64(len(calls))}
    first = cached_measure(tmp_path, lora_model, "probe", compute, n=3)
    again = cached_measure(tmp_path, lora_model, "probe", compute, n=3)
    other = cached_measure(tmp_path, lora_model, "probe", compute, n=4)
    assert first == again == {"value": 1.0} and other == {"value": 2.0} and len(calls) == 2
    saved = json.loads(next((tmp_path / "measures").glob("probe-*.json")).read_text())
    assert saved["config"]["adapter"] != "base" and not list((tmp_path / "measures").glob("*.partial"))
    with ablation.scaled_lora(lora_model, 0.5):  # other weights: another entry
        assert cached_measure(tmp_path, lora_model, "probe", compute, n=3) == {"value": 3.0}


def test_scaled_lora_interpolates_between_base_and_adapter_and_restores_exactly(tokenizer, lora_model):
    before = {n: p.detach().clone() for n, p in lora_model.named_parameters()}
    tuned = _logits(lora_model, tokenizer)
    with lora_model.disable_adapter():
        base = _logits(lora_model, tokenizer)
    with ablation.scaled_lora(lora_model, 0.0):
        assert torch.allclose(_logits(lora_model, tokenizer), base, atol=1e-5)
    with ablation.scaled_lora(lora_model, 1.0):
        assert torch.allclose(_logits(lora_model, tokenizer), tuned, atol=1e-6)
    with ablation.scaled_lora(lora_model, 0.5):
        half = _logits(lora_model, tokenizer)
        assert not torch.allclose(half, tuned, atol=1e-4) and not torch.allclose(half, base, atol=1e-4)
    assert all(torch.equal(before[n], p) for n, p in lora_model.named_parameters())


def test_scaled_lora_refuses_a_model_without_adapter_and_a_negative_dose(tokenizer, lora_model):
    with pytest.raises(ValueError, match="no LoRA adapter"):
        with ablation.scaled_lora(make_tiny_model(len(tokenizer)), 0.5):
            pass
    with pytest.raises(ValueError, match="factor must be >= 0"):
        with ablation.scaled_lora(lora_model, -1):
            pass


def test_crossing_update_is_the_first_update_within_the_threshold():
    history = pd.DataFrame({"update": [0, 1, 2, 3], "loss": [3.0, 1.6, 1.19, 1.1], "optimal_loss": [1.0] * 4})
    assert ablation.crossing_update(history, 0.5) == 2
    assert ablation.crossing_update(history, 0.2) == 2
    assert ablation.crossing_update(history, 0.05) is None


def test_least_dose_picks_the_smallest_lr_times_updates_among_runs_that_qualify():
    runs = pd.DataFrame({"lr": [5e-4, 1e-4, 5e-5, 1e-3], "updates": [40, 100, 50, 10],
                         "stopped": [True, True, False, True], "knowledge change": [-2.0, -1.0, 0.0, -9.0]})
    pick = ablation.least_dose(runs, "knowledge", 5)
    assert (pick["lr"], pick["updates"]) == (1e-4, 100)   # dose 0.01; 5e-4 x 40 = 0.02; 1e-3 x 10 loses 9 points
    assert ablation.least_dose(runs, "knowledge", 0.5) is None


def test_turn_ending_probe_equals_the_next_token_softmax(tokenizer, tiny_model):
    probe = format_probes.turn_ending_probe(tiny_model, tokenizer, "Write a biography.", ["Ada Obi"])
    ids = torch.tensor([encode_prompt(tokenizer, "Write a biography.", "{Ada Obi}")])
    with torch.no_grad():
        probs = tiny_model(input_ids=ids).logits[0, -1].float().softmax(-1)
    ends = sorted(set(end_of_turn_ids(tokenizer)) | {tokenizer.eos_token_id})
    newline = [i for i in range(len(tokenizer)) if tokenizer.decode([i]).startswith("\n")]
    row = probe.iloc[0]
    assert row["p_end_of_turn"] == pytest.approx(float(probs[ends].sum()), rel=1e-5)
    assert row["p_newline"] == pytest.approx(float(probs[newline].sum()), rel=1e-5)
    assert row["top_token"] == tokenizer.decode([int(probs.argmax())])


class _EndsAtOnce(torch.nn.Module):
    """A model that wants to end its turn at every step (end-of-turn logits raised by 50)."""
    def __init__(self, model, ends):
        super().__init__()
        self.model, self.ends = model, ends

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    @property
    def config(self):
        return self.model.config

    def forward(self, **kwargs):
        output = self.model(**kwargs)
        boost = torch.zeros(output.logits.shape[-1])
        boost[self.ends] = 50.0
        output.logits = output.logits + boost
        return output


def test_sampling_holds_the_end_of_turn_until_the_fields_close(tokenizer, tiny_model):
    ends = sorted(set(end_of_turn_ids(tokenizer)) | {tokenizer.eos_token_id})
    eager = _EndsAtOnce(tiny_model, ends)
    settings = dict(max_new_tokens=6, response_prefix="{", progress=False)
    free = sample(eager, tokenizer, "Write.", n=3, closing_fields=0, **settings)
    held = sample(eager, tokenizer, "Write.", n=3, closing_fields=1, **settings)
    assert free == ["{"] * 3                        # nothing held: it ends at once
    assert all(len(text) > 1 for text in held)     # held: it cannot end before a brace closes


def test_holding_fields_changes_only_the_rows_that_would_end_early(tokenizer, tiny_model):
    settings = dict(max_new_tokens=8, seed=3, response_prefix="{", progress=False)
    plain = sample(tiny_model, tokenizer, "Pick.", n=12, **settings)
    assert sample(tiny_model, tokenizer, "Pick.", n=12, closing_fields=0, **settings) == plain
    held = sample(tiny_model, tokenizer, "Pick.", n=12, closing_fields=1, **settings)
    # a row that closed a brace before any end of turn was drawn never met the hold: the same text
    for before, after in zip(plain, held):
        if "}" in before:
            assert after == before
    assert SampleSettings(closing_fields=0) == SampleSettings()  # nothing held: the same draw, the same key


def test_biography_format_counts_fields_copies_and_distinct_values():
    texts = ["{Ada Obi}", "{David Hippocampus}\n{Male}\n{June 30, 1960}\n{Cambridge, UK}\n{Doctor}\n{Did it.}",
             "{Lee Chan}\n{Female}\n{May 2, 1931}\n{Lagos, Nigeria}\n{Nurse}\n{Led clinics.}", "no braces"]
    figures = format_probes.biography_format(texts)
    assert figures["n"] == 4 and figures["one_field"] == 0.25 and figures["well_formed"] == 0.5
    assert figures["copies_example"] == 0.25
    assert (figures["first_name_coverage"], figures["last_name_coverage"]) == (3, 3)
    assert (figures["birth_place_coverage"], figures["birth_year_coverage"]) == (2, 2)


def test_a_base_model_that_still_holds_an_adapter_is_refused_by_the_caches(tmp_path, tokenizer):
    from diffuse_utils.artifacts import adapter_fingerprint
    base = make_tiny_model(len(tokenizer))
    tuned = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"]))
    assert adapter_fingerprint(tuned) != "base"
    with pytest.raises(ValueError, match="holds LoRA layers but is not a PeftModel"):
        adapter_fingerprint(base)            # the same object PEFT injected the adapter into
    with pytest.raises(ValueError, match="unload"):
        cached_measure(tmp_path, base, "probe", lambda: {"x": 1})
    assert adapter_fingerprint(tuned.unload()) == "base"


def test_least_dose_keeps_the_threshold_and_rank_it_is_given():
    runs = pd.DataFrame({
        "lr": [5e-4, 5e-4, 1e-4, 1e-4], "rank": [4, 4, 16, 16], "gamma": [0.2, 0.5] * 2,
        "updates": [40, 10, 100, 30], "stopped": [True] * 4,
        "knowledge change": [0.0] * 4,
    })
    assert ablation.least_dose(runs, "knowledge", 5)["updates"] == 30  # 1e-4 x 30
    at_stop = ablation.least_dose(runs, "knowledge", 5, gamma=0.2)
    assert (at_stop["lr"], at_stop["rank"]) == (1e-4, 16)  # 0.01 against 0.02
    paper = ablation.least_dose(runs, "knowledge", 5, gamma=0.2, rank=4)
    assert (paper["lr"], paper["updates"]) == (5e-4, 40)
    assert ablation.least_dose(runs, "knowledge", 5, gamma=0.2, rank=8) is None


def test_best_transfer_is_the_largest_ood_gain_within_the_tolerance():
    runs = pd.DataFrame(
        {"OOD entropy gain": [0.3, 0.1, 0.5, np.nan],
         "knowledge change": [-2, 0, -9, 0]},
        index=["pass, lr 0.0005", "prompt, lr 5e-05", "prompt, lr 0.0005", "six tasks"],
    )
    assert ablation.best_transfer(runs, "knowledge", 5) == "pass, lr 0.0005"
    assert ablation.best_transfer(runs, "knowledge", 10) == "prompt, lr 0.0005"
    assert ablation.best_transfer(runs, "knowledge", 1) == "prompt, lr 5e-05"
    nobody = runs.assign(**{"knowledge change": -20})
    assert ablation.best_transfer(nobody, "knowledge", 5) is None


def _curve(ratios, memorization):
    return pd.DataFrame({"L / H(p*)": ratios, "memorization": memorization})


def test_memorization_at_interpolates_where_the_loss_first_falls_to_the_level():
    curve = _curve([3.0, 2.0, 1.0], [0.3, 0.2, 0.05])
    assert ablation_runs.memorization_at(curve, 1.5) == pytest.approx(0.125)
    assert ablation_runs.memorization_at(curve, 2.0) == pytest.approx(0.2)
    assert ablation_runs.memorization_at(curve, 2.75) == pytest.approx(0.275)
    assert ablation_runs.memorization_at(curve, 3.5) == 0.3  # below it from the start
    assert np.isnan(ablation_runs.memorization_at(curve, 0.5))  # never that low


def test_common_memorization_compares_runs_at_the_lowest_loss_all_reach():
    curves = {"fast": _curve([3.0, 2.0, 1.0], [0.3, 0.2, 0.05]),
              "slow": _curve([3.0, 2.5, 2.0], [0.3, 0.28, 0.26])}
    level, at = ablation_runs.common_memorization(curves)
    assert level == 2.0
    assert at.to_dict() == pytest.approx({"fast": 0.2, "slow": 0.26})


def test_diagnostic_curves_read_the_monitor_columns_of_each_history():
    history = pd.DataFrame({
        "update": [0, 1, 2, 3], "L/names": [4.0, np.nan, 3.0, 2.0],
        "H/names": [1.0, np.nan, 1.0, 1.0], "KL/names": [1.0, np.nan, 0.5, 0.2],
        "neg_log_mass/names": [2.0, np.nan, 1.5, 0.8],
        "memorization/names": [0.3, np.nan, 0.2, 0.1],
    })
    curve = ablation_runs.diagnostic_curves({"lr 0.0005, r 4": history}, "names")
    curve = curve["lr 0.0005, r 4"]
    assert curve["update"].tolist() == [0, 2, 3]  # rows where the task was measured
    assert curve["L / H(p*)"].tolist() == [4.0, 3.0, 2.0]
    assert curve["-log M"].tolist() == [2.0, 1.5, 0.8]
    assert list(curve.columns) == [
        "update", "L / H(p*)", "-log M", "KL(p* || q_T)", "memorization"
    ]


def test_name_figures_on_a_handful_of_texts():
    texts = ["{Ada}", "{ada}", "{Zoe}", "{name}", "no braces", "{Xq}"]
    figures = ablation_runs.name_figures(
        texts, ["Ada", "Bo", "Zoe"], ["Ada", "Bo"], prompt="Give a {name}."
    )
    assert figures["valid_rate"] == pytest.approx(3 / 6)  # Ada, ada, Zoe
    assert figures["coverage_valid"] == 2
    assert figures["outside (generations)"] == pytest.approx(1 / 3)  # Zoe
    assert figures["outside (distinct)"] == pytest.approx(1 / 2)  # of Ada, Zoe
    none = ablation_runs.name_figures(["{Xq}"], ["Ada"], ["Ada"])
    assert none["valid_rate"] == 0 and none["outside (distinct)"] == 0
    assert np.isnan(none["outside (generations)"])


def test_schedule_keeps_the_prompt_schedule_or_samples_pairs_per_pass():
    chapter4 = TuneSettings(update_per="prompt", passes=8, lr=5e-4, targets_per_step=16)
    prompt = ablation_runs.schedule(chapter4, "prompt", 5e-5, passes=40, pairs=6)
    assert prompt == TuneSettings(update_per="prompt", passes=8, lr=5e-5,
                                  targets_per_step=16)
    per_pass = ablation_runs.schedule(chapter4, "pass", 5e-5, passes=40, pairs=6)
    assert (per_pass.update_per, per_pass.passes, per_pass.tasks_per_step) == (
        "pass", 40, 6,
    )
    assert (per_pass.lr, per_pass.targets_per_step) == (5e-5, 16)


def test_adapter_points_put_both_experiments_on_one_frame():
    names = pd.DataFrame({
        "run": ["lr 0.0005, r 4, gamma 0.2"], "entropy_valid": [3.0],
        "qa_named change": [-5.0], "knowledge change": [-1.0],
    })
    suite = ablation_runs.with_gains(pd.DataFrame(
        {"ID entropy": [1.0, 1.5, 1.2], "OOD entropy": [2.0, 2.4, np.nan],
         "qa_named change": [0.0, -3.0, -1.0], "knowledge change": [0.0, -2.0, 0.0]},
        index=pd.Index(["base", "prompt, lr 0.0005", "six tasks x 1"], name="run"),
    ))
    defaults = {"lr 0.0005, r 4, gamma 0.2", "prompt, lr 0.0005"}
    points = ablation.adapter_points(names, {"entropy_valid": 2.0}, suite, defaults)
    assert points["label"].tolist() == [
        "lr 0.0005, r 4, gamma 0.2", "prompt, lr 0.0005", "six tasks x 1"
    ]
    assert points["experiment"].tolist() == ["BABYNAMES", "six tasks", "six tasks"]
    assert points["ID gain"].tolist() == pytest.approx([1.0, 0.5, 0.2])
    assert points["OOD gain"].iloc[1] == pytest.approx(0.4)
    assert points["OOD gain"].iloc[[0, 2]].isna().all()  # no family left out
    assert points["book default"].tolist() == [True, True, False]


class _Probe:
    """A stand-in utility probe: fixed figures, so a test tunes without capital data."""

    questions = [("France", "Paris")] * 4

    def measure(self, model, tokenizer):
        return {"qa_named": 0.5, "qa_exact": 0.25, "knowledge": 0.75, "perplexity": 9.0}

    def key(self):
        return {"probe": "stand-in"}


def test_names_runs_measure_each_threshold_and_hand_the_base_model_back(
    tmp_path, tokenizer
):
    model = make_tiny_model(len(tokenizer))
    bench = ablation.Bench(tmp_path, model, tokenizer, _Probe(), batch_size=4)
    assert bench.base_utility["knowledge"] == 0.75
    task = Task("names", ["Name a baby."], ["Ada", "Bo"], metadata={"held_out": ["Cy"]})
    probe = ablation_runs.NameProbe(task, ["Ada", "Bo", "Cy"], 3, SampleSettings(
        max_new_tokens=3))
    settings = TuneSettings(passes=2, lora_rank=2)
    table, histories = ablation_runs.names_runs(
        bench, probe, [(1e-3, 2)], settings, (0.2, 0.5), every=1
    )
    assert adapter_fingerprint(model) == "base"  # no adapter left inside the base model
    assert table["run"].tolist() == [
        "lr 0.001, r 2, gamma 0.2", "lr 0.001, r 2, gamma 0.5"
    ]
    assert table["knowledge change"].tolist() == [0.0, 0.0]
    assert not table["stopped"].any() and (table["updates"] == 2).all()
    curves = ablation_runs.diagnostic_curves(histories, "names")
    assert list(curves) == ["lr 0.001, r 2"] and len(curves["lr 0.001, r 2"]) == 3
    again, _ = ablation_runs.names_runs(
        bench, probe, [(1e-3, 2)], settings, (0.2, 0.5), every=1
    )
    pd.testing.assert_frame_equal(again, table)  # read back from the caches


def test_schedule_runs_give_id_and_ood_figures_against_the_base_model(
    tmp_path, tokenizer
):
    def family(name, letters):
        task = Task(
            name, [f"Pick a {name}."], letters,
            metadata={"held_out_prompts": [f"A {name}?"], "enumerable": True},
        )
        return TaskFamily(name=name, title=name.upper(), subtasks=[task])

    model = make_tiny_model(len(tokenizer))
    bench = ablation.Bench(tmp_path, model, tokenizer, _Probe())
    trained, held = [family("vowel", ["a", "e"])], [family("digit", ["1", "2", "3"])]
    one_pass = TuneSettings(passes=1, lora_rank=2)
    schedules = {"pass, lr 0.001": ablation_runs.schedule(one_pass, "pass", 1e-3, 1, 1)}
    table = ablation_runs.schedule_runs(bench, trained, held, schedules)
    assert adapter_fingerprint(model) == "base"
    assert table.index.tolist() == ["base", "pass, lr 0.001"]
    assert table.loc["base", "OOD entropy gain"] == 0.0
    assert 0 <= table.loc["base", "OOD entropy"] <= np.log(3) + 1e-9
    assert table.loc["pass, lr 0.001", "updates"] == 1
    row = ablation_runs.suite_row(bench, model, trained)  # nothing held out: no OOD
    assert np.isnan(row["OOD entropy"])
    assert row["ID entropy"] == table.loc["base", "ID entropy"]
