"""Profiles name every setting of every run: the shared tuning runs and the chapters' own
parameters; "auto" picks one by the GPU's memory, and a value the reader set is kept."""
import ast
import json
from pathlib import Path

import pytest
import yaml

from diffuse_utils import profiles

ROOT = Path(__file__).resolve().parents[1]


def _parameters(notebook: Path) -> dict:
    cells = json.loads(notebook.read_text())["cells"]
    cell = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    tree = ast.parse("".join(cell["source"]))
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.Assign)}


def test_auto_is_default_without_a_gpu_and_the_largest_profile_the_gpu_holds():
    assert profiles.resolve("auto", gpu_gib=None)[0] in ("default", "gpu-embedded", "gpu-qwen2.5-1.5b")
    assert profiles.resolve("auto", gpu_gib=14.7) == ("gpu-embedded", "auto: a CUDA GPU with 14.7 GiB")
    assert profiles.resolve("auto", gpu_gib=16.0)[0] == "gpu-qwen2.5-1.5b"   # at the threshold
    assert profiles.resolve("auto", gpu_gib=80.0)[0] == "gpu-qwen2.5-1.5b"   # gated models never
    assert profiles.resolve("full") == ("full", "named")
    with pytest.raises(ValueError, match="unknown profile 'cpu'"):
        profiles.resolve("cpu")


def test_auto_on_a_machine_without_cuda_is_default(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert profiles.resolve("auto") == ("default", "auto: no CUDA GPU")


def test_a_profile_extends_its_parents_chapters_key_by_key():
    full = profiles.chapter_settings("07_what_it_takes", "full")
    assert full["n_names"] == 1000 and full["pass_pairs"] == 6      # pass_pairs from default
    gpu = profiles.chapter_settings("07_what_it_takes", "gpu-embedded")
    assert gpu["n_names"] == 1000 and gpu["device"] == "cuda"       # full's grid, on the GPU
    assert profiles.chapter_settings("04_leave_one_out", "gpu-embedded")["n_samples"] == 1000
    qwen = profiles.chapter_settings("05_synthetic_biographies", "gpu-qwen2.5-1.5b")
    assert qwen["model_name"] == "Qwen/Qwen2.5-1.5B-Instruct" and qwen["response_prefix"] == ""
    assert profiles.chapter_settings("01_measuring_bias", "gpu-llama-2-13b")["dtype"] == "bf16"
    assert profiles.run("six_tasks", "gpu-qwen2.5-1.5b").lr == 5e-5   # the release's runs


def test_apply_sets_what_was_left_at_the_default_and_keeps_what_was_set(capsys):
    namespace = {"n_samples": 40, "model_name": "embedded", "device": "auto", "dtype": "auto",
                 "sample_batch_size": 7, "seed": 0}
    assert profiles.apply(namespace, "04_leave_one_out", "auto", gpu_gib=20.0) == "gpu-qwen2.5-1.5b"
    assert namespace == {"n_samples": 1000, "model_name": "Qwen/Qwen2.5-1.5B-Instruct",
                         "device": "cuda", "dtype": "fp32", "sample_batch_size": 7, "seed": 0}
    assert capsys.readouterr().out == (
        "profile gpu-qwen2.5-1.5b (auto: a CUDA GPU with 20.0 GiB): model_name 'embedded' -> "
        "'Qwen/Qwen2.5-1.5B-Instruct'; device 'auto' -> 'cuda'; dtype 'auto' -> 'fp32'; "
        "n_samples 40 -> 1000\n")
    kept = {"n_samples": 40}
    assert profiles.apply(kept, "04_leave_one_out", "default") == "default"
    assert kept == {"n_samples": 40} and capsys.readouterr().out == "profile default (named)\n"


def test_every_profile_names_only_parameters_its_chapters_have():
    notebooks = {p.stem: _parameters(p) for p in sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))}
    book = yaml.safe_load((ROOT / "diffuse_utils" / "profiles.yaml").read_text())
    for name in book:
        chapters = profiles.profile_entries(name).get("chapters") or {}
        for chapter, settings in chapters.items():
            if chapter == "all":
                continue
            assert chapter in notebooks, (name, chapter)
            unknown = set(settings) - set(notebooks[chapter])
            assert not unknown, f"profile {name} sets {sorted(unknown)}, not parameters of {chapter}"


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("0*.ipynb")), ids=lambda p: p.stem)
def test_a_notebooks_defaults_are_its_default_profiles(notebook):
    """apply() tells a value the reader set from a default by the default profile's value:
    the parameters cell must hold exactly that value, and start from profile "auto"."""
    parameters = _parameters(notebook)
    assert parameters.get("profile") == "auto", f"{notebook.name}: profile = \"auto\" for a reader"
    code = "\n".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"]
                     if c["cell_type"] == "code")
    assert f'du.profiles.apply(globals(), "{notebook.stem}", profile)' in code, notebook.name
    default = profiles.chapter_settings(notebook.stem, "default")
    for key, value in default.items():
        if key in parameters:
            assert parameters[key] == value, (notebook.name, key, parameters[key], value)


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("0*.ipynb")), ids=lambda p: p.stem)
def test_no_cell_reads_a_profile_setting_before_the_profile_is_applied(notebook):
    """A cell above ``profiles.apply`` sees the notebook's defaults, not the profile's: chapter 7's
    note on what ran said "2 BABYNAMES runs" in the full profile, which ran 8."""
    import re

    book = yaml.safe_load((ROOT / "diffuse_utils" / "profiles.yaml").read_text())
    names = set()
    for entry in book.values():
        chapters = entry.get("chapters") or {}
        names |= set(chapters.get("all", {})) | set(chapters.get(notebook.stem, {}))
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    applied = next(i for i, c in enumerate(cells) if "profiles.apply(" in "".join(c["source"]))
    for cell in cells[:applied]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        source = "".join(cell["source"])
        read = sorted(n for n in names if re.search(rf"\b{n}\b", source))
        assert not read, f"{notebook.name}: a cell above profiles.apply reads {read}"
