"""The settings table of chapter 3, the chapters' shared tuning settings, and the utility probes."""
import json
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from diffuse_utils import TuneSettings, fidelity, profiles
from diffuse_utils.scoring import naive_logprobs
from diffuse_utils.utility import knowledge_accuracy, knowledge_choices, knowledge_task

from conftest import make_tiny_model

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# The shared runs each chapter tunes or reuses: it must read them from the profile, never type them.
READS = {"03_lora_tuning": ("rng", "babynames"), "04_leave_one_out": ("six_tasks",),
         "05_synthetic_biographies": ("six_tasks", "tuned_id"),
         "06_is_tuning_worth_it": ("rng", "babynames", "six_tasks"),
         "07_what_it_takes": ("babynames", "six_tasks")}


def _code(notebook: str) -> str:
    cells = json.loads((NOTEBOOKS / f"{notebook}.ipynb").read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.mark.parametrize("notebook", sorted(READS))
def test_chapters_read_shared_runs_from_the_profile_and_type_none(notebook):
    code = _code(notebook)
    for name in READS[notebook]:
        # the call as `ruff format` may wrap it: du.profiles.run(\n    "name",\n    profile, ...
        assert re.search(rf'du\.profiles\.run\(\s*"{name}",\s*profile\b', code), (notebook, name)
    # no run's settings typed in a chapter (du.TuneSettings() alone is the release's)
    assert not re.search(r"du\.TuneSettings\([^)]", code), notebook
    for typed in ("lr = 5e-4", "passes = 8", "targets_per_step = 16"):
        assert typed not in code, (notebook, typed)


def test_every_profile_resolves_and_gpu_trains_as_the_release():
    release = fidelity.release_column("six tasks")
    for name in profiles.RUNS:
        for profile in ("default", "full", "ci", "gpu"):
            assert isinstance(profiles.run(name, profile), TuneSettings)
        gpu = asdict(profiles.run(name, "gpu"))
        for key in ("update_per", "passes", "lr", "lora_rank", "tasks_per_step", "targets_per_step"):
            assert gpu[key] == release[key], (name, key)
    assert profiles.entry("tuned_id", "gpu")["starts"][0] == "six tasks"   # the release continues it
    assert profiles.run("babynames", "gpu").early_stop_gamma == 0.2
    assert profiles.run("six_tasks", "gpu").early_stop_gamma is None


def test_profiles_extend_override_and_refuse_what_they_do_not_know(tmp_path):
    ci = profiles.entry("babynames", "ci")
    assert ci["settings"]["passes"] == 3 and ci["settings"]["lr"] == 5e-4   # extends default field by field
    assert ci["monitor"] == {"diagnose_every": 5, "n_questions": 4, "knowledge_choices": 4, "text_chars": 2000}
    assert profiles.run("six_tasks", "ci", passes=None, lr=1e-3).lr == 1e-3   # None keeps the profile's
    assert profiles.run("six_tasks", "ci", passes=None).passes == 1
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"extends": "gpu", "six_tasks": {"settings": {"passes": 5}}}))
    assert profiles.run("six_tasks", str(mine)).passes == 5 and profiles.run("six_tasks", str(mine)).lr == 5e-5
    with pytest.raises(ValueError, match="unknown profile 'cpu'.*'default'"):
        profiles.run("rng", "cpu")
    with pytest.raises(ValueError, match="has no run 'names'"):
        profiles.run("names")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"extends": "default", "rng": {"settings": {"learning_rate": 1}}}))
    with pytest.raises(ValueError, match=r"unknown settings \['learning_rate'\]"):
        profiles.run("rng", str(bad))


def test_settings_table_fills_every_row_and_says_why_where_a_run_differs():
    columns = fidelity.profile_columns("six tasks")
    table = fidelity.settings_table(columns, "six tasks")
    assert list(table.index) == list(fidelity.ROWS.values())
    cpu, gpu = "CPU (profile default)", "GPU (profile gpu)"
    assert list(table) == ["paper (text)", "release (code)", cpu, gpu]  # the reasons are apart
    assert (table[["release (code)", cpu, gpu]] != "").all().all()
    assert table.loc["learning rate", "release (code)"] == "5e-05" and table.loc["learning rate", cpu] == "0.0005"
    assert table.loc["learning rate", gpu] == "5e-05" and table.loc["passes", gpu] == "50"
    assert table.loc["LoRA modules", "release (code)"] == "q, k, v, o, gate, up, down"  # can wrap
    differs = fidelity.differences(columns, "six tasks")
    assert "CPU budget" in differs.loc["passes", "why"] and differs.loc["passes", "differs in"] == cpu
    assert "gradient clipping" not in differs.index  # same as the release in every column
    both = fidelity.differences(fidelity.profile_columns("Tuned-ID"), "Tuned-ID")
    assert both.loc["starts from", "differs in"] == f"{cpu} and {gpu}"
    text = fidelity.why_ours_differs(columns, "six tasks").data
    assert f"- **passes**, in {cpu}: a CPU budget" in text.splitlines()
    assert fidelity.why_ours_differs({"as released": fidelity.release_column("RNG")}, "RNG").data == (
        "RNG: every setting is the release's.")
    assert fidelity.release_column("six tasks")["early_stop_gamma"] is None
    assert fidelity.release_column("Tuned-ID")["start"] == "six tasks"
    assert fidelity.profile_columns("Tuned-ID")[gpu]["start"] == "six tasks and fresh"
    assert fidelity.scope_column(TuneSettings(), dtype=torch.float32)["dtype"] == "fp32"
    release = fidelity.settings_table({}, "RNG")["release (code)"]
    assert release["targets per update"] == "all" and release["early stop gamma"] == "none"
    assert fidelity.scope_column(TuneSettings(), dtype=torch.bfloat16)["dtype"] == "bf16"
    with pytest.raises(ValueError, match="pass the loaded model's dtype"):
        fidelity.scope_column(TuneSettings(), dtype="auto")
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


FULL_GLUE = re.compile(r"""glue\(\s*"(full_\w+)",\s*([^)\n]+)""")


def test_a_page_quoting_the_full_profile_reads_it_from_the_profile():
    """A default page that says what the full profile runs glues the full profile's value
    as the profile gives it (``du.profiles.chapter_settings(chapter, "full")`` or
    ``du.profiles.run(name, "full")``), never typed: a typed number drifts from the profile."""
    quoted = 0
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for name, value in FULL_GLUE.findall(source):
            assert not re.fullmatch(r"[\d.e+-]+", value.strip()), f"{path.name}: {name} typed as {value}"
            quoted += 1
        if "full_" in source:
            assert 'chapter_settings("' + path.stem + '", "full")' in source or '"full")' in source
    assert quoted >= 3
