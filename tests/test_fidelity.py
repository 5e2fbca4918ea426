"""The settings table of chapter 3, the chapters' shared tuning settings, and the utility probes."""
from pathlib import Path

import numpy as np
import pytest
import yaml

from diffuse_utils import TuneSettings, fidelity
from diffuse_utils.scoring import naive_logprobs
from diffuse_utils.utility import knowledge_accuracy, knowledge_choices, knowledge_task

from conftest import make_tiny_model

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PARAMS = [None, *sorted((ROOT / "params").glob("*.yaml"))]
# Settings that must agree between chapters so that one chapter's saved adapter is another's: for each
# shared adapter, each chapter's names for the same settings, in the same order.
SHARED = {
    "chapter 3's RNG and BABYNAMES": {
        "03_lora_tuning": ("update_per", "passes", "lr", "lora_rank", "names_gamma", "n_name_draws"),
        "06_is_tuning_worth_it": ("update_per", "passes", "lr", "lora_rank", "names_gamma", "n_name_draws")},
    "chapter 3's monitored BABYNAMES runs (chapter 7 reuses them)": {
        "03_lora_tuning": ("passes", "names_gamma", "n_name_draws", "diagnose_every", "n_questions", "knowledge_choices",
                           "text_chars"),
        "07_what_it_takes": ("passes", "names_gamma", "n_name_draws", "diagnose_every", "n_questions",
                             "knowledge_choices", "text_chars")},
    "the six-task adapter": {
        "04_leave_one_out": ("update_per", "passes", "lr", "lora_rank", "tasks_per_step", "targets_per_step", "task_names"),
        "05_synthetic_biographies": ("update_per", "passes", "lr", "lora_rank", "tasks_per_step", "targets_per_step",
                                     "task_names"),
        "06_is_tuning_worth_it": ("suite_update_per", "suite_passes", "lr", "lora_rank", "tasks_per_step",
                                  "targets_per_step", "suite_tasks"),
        "07_what_it_takes": ("update_per", "suite_passes", "lr", "lora_rank", "tasks_per_step", "targets_per_step",
                             "suite_tasks")},
}


def _values(params_path):
    """Each chapter's parameter values under a params file (None: the notebooks' defaults)."""
    values = {}
    for notebook in ("03_lora_tuning", "04_leave_one_out", "05_synthetic_biographies", "06_is_tuning_worth_it",
                     "07_what_it_takes"):
        defaults = fidelity.notebook_defaults(NOTEBOOKS / f"{notebook}.ipynb")
        values[notebook] = defaults if params_path is None else fidelity.with_params_file(defaults, params_path, notebook)
    return values


@pytest.mark.parametrize("params_path", PARAMS, ids=lambda p: "defaults" if p is None else p.name)
def test_chapters_that_share_an_adapter_restate_the_same_settings(params_path):
    values = _values(params_path)
    for adapter, chapters in SHARED.items():
        restated = {notebook: [values[notebook][name] for name in names] for notebook, names in chapters.items()}
        first = next(iter(restated.values()))
        assert all(settings == first for settings in restated.values()), (adapter, restated, params_path)


def test_the_agreement_check_fails_when_one_chapter_changes_its_rate(tmp_path):
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump({"06_is_tuning_worth_it": {"lr": 1e-3}}))
    with pytest.raises(AssertionError):
        test_chapters_that_share_an_adapter_restate_the_same_settings(changed)


def test_gpu_params_train_as_the_release():
    release = fidelity.release_column("six tasks")
    for params_path in (ROOT / "params").glob("gpu-*.yaml"):
        values = _values(params_path)
        for scope, notebook in (("BABYNAMES", "03_lora_tuning"), ("six tasks", "04_leave_one_out"),
                                ("Tuned-ID", "05_synthetic_biographies")):
            column = fidelity.scope_column(values[notebook], scope)
            for key in ("update_per", "passes", "lr", "lora_rank", "tasks_per_step", "targets_per_step"):
                assert column[key] == release[key], (params_path.name, scope, key)
            assert column["dtype"] == "fp32", (params_path.name, scope)
        assert values["05_synthetic_biographies"]["tuned_id_starts"][0] == "six tasks"


def test_settings_table_fills_every_row_and_says_why_where_a_run_differs():
    defaults = fidelity.notebook_defaults(NOTEBOOKS / "04_leave_one_out.ipynb")
    table = fidelity.settings_table({"CPU": fidelity.scope_column(defaults, "six tasks")}, "six tasks")
    assert list(table.index) == list(fidelity.ROWS.values())
    assert (table[["release (code)", "CPU"]] != "").all().all()
    assert table.loc["learning rate", "release (code)"] == "5e-05" and table.loc["learning rate", "CPU"] == "0.0005"
    assert "CPU budget" in table.loc["passes", "why ours differs"]
    assert table.loc["gradient clipping", "why ours differs"] == ""  # same as the release
    assert table.loc["LoRA modules", "release (code)"] == "q,k,v,o,gate,up,down"
    assert fidelity.release_column("six tasks")["early_stop_gamma"] is None
    assert fidelity.release_column("Tuned-ID")["start"] == "six tasks"
    assert TuneSettings().update_per == "prompt"


def test_knowledge_probe_ranks_the_true_capital_by_exact_scores(tokenizer):
    model = make_tiny_model(len(tokenizer))
    questions = [("France", "Paris"), ("Peru", "Lima"), ("Chad", "N'Djamena"), ("Fiji", "Suva")]
    result = knowledge_accuracy(model, tokenizer, questions)
    choices = knowledge_choices(questions)
    expected = []
    for (country, capital), options in zip(questions, choices):
        task = knowledge_task(country, options)
        from diffuse_utils import encode_task
        encoded = encode_task(tokenizer, task)
        scores = naive_logprobs(model, encoded.prompt_ids[0], encoded.target_ids).detach().numpy()
        expected.append(int((scores > scores[options.index(capital)]).sum()) + 1)
    assert result["ranks"] == expected
    assert result["accuracy"] == np.mean([r == 1 for r in expected])
    picked = knowledge_choices(questions, n_choices=2, seed=0)
    assert all(len(o) == 2 and capital in o for o, (_, capital) in zip(picked, questions))
    assert picked == knowledge_choices(questions, n_choices=2, seed=0)


def test_repository_root_is_found_from_inside_and_not_outside(tmp_path):
    assert fidelity.repository_root(NOTEBOOKS) == ROOT == fidelity.repository_root(ROOT / "diffuse_utils")
    assert fidelity.repository_root(tmp_path) is None
