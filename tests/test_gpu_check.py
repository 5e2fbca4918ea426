"""scripts/gpu_check.py: its dry run (tiny shapes on the CPU) goes through the same code as the GPU run."""
import json
import subprocess
import sys
from dataclasses import make_dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"

from conftest import load_script


def load_gpu_check():
    return load_script("scripts/gpu_check.py")


def test_dry_run_builds_tunes_samples_and_checks(tmp_path):
    output = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--output", str(output)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(output.read_text())
    assert results["dry_run"] and results["device"] == "cpu"
    assert [row["model"] for row in results["models"]] == ["Qwen2.5-1.5B", "Gemma-2-2B", "Llama-2-13B"]
    for row in results["models"]:
        assert row["tuning"]["updates"] == results["prompts"] == 2        # one update per (task, prompt)
        assert row["sampling"]["samples"] == 8
        assert 0 < row["sampling"]["tokens"] <= 8 * 15                  # decoded positions, prompt excluded
        assert row["tuning"]["tokens"] > 0 and row["peak_gpu_memory_gib"] is None
    assert results["projected_paper_13b_run_minutes"] == pytest.approx(
        50 * results["models"][-1]["tuning"]["seconds"] / 60)
    assert results["device_agreement"]["fp32"]["ok"] and results["device_agreement"]["bf16"]["ok"]
    assert results["auto_choice"] == {"device": "cpu", "dtype": "float32", "ok": True}


def test_shapes_are_the_published_configurations():
    from transformers import AutoConfig
    gpu_check = load_gpu_check()
    model, parameters = gpu_check.build("Gemma-2-2B", 49152, "meta", None, tiny=False)
    assert model.config.final_logit_softcapping == 30.0 and model.config.head_dim == 256
    assert round(parameters / 1e9, 2) == 2.61    # Gemma-2-2B's published size (tied embeddings counted once)
    qwen = AutoConfig.for_model(**gpu_check.SHAPES["Qwen2.5-1.5B"])
    assert (qwen.num_hidden_layers, qwen.hidden_size, qwen.num_key_value_heads) == (28, 1536, 2)


def test_a_tune_without_per_prompt_updates_is_refused_with_the_fix(monkeypatch):
    gpu_check = load_gpu_check()
    monkeypatch.setattr(gpu_check.du, "TuneSettings", make_dataclass("TuneSettings", [("passes", int, 50)]))
    with pytest.raises(SystemExit, match="update_per='prompt'"):
        gpu_check.check_tune_api()
