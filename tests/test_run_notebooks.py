"""The book runner's heartbeat: a long cell says, at least every interval, that it is alive."""
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "run_notebooks.py"

# One cell: prints, sleeps, then runs a tqdm.auto bar (an ipywidget in a kernel: no text reaches
# the runner, only widget messages) with sleeps.
SLEEPY_CELL = """import time
from tqdm.auto import tqdm
print("warming up", flush=True)
time.sleep(3)
for _ in tqdm(range(3), desc="counting"):
    time.sleep(1)"""

# A "What we saw" cell whose Markdown keeps a glue role, as a page would that forgot to fill it in.
GLUED_FINDINGS = """from IPython.display import Markdown
findings = Markdown
findings("The entropy rose to {glue:text}`entropy:.2f` nats.")"""

from conftest import load_script


def load_runner():
    return load_script("scripts/run_notebooks.py")


def test_a_long_cell_prints_heartbeats_with_its_output_and_progress(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SLEEPY_CELL),
                                               nbformat.v4.new_code_cell(GLUED_FINDINGS)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "01_sleepy.ipynb")
    run = subprocess.run([sys.executable, str(SCRIPT), "--heartbeat", "1", "--output", str(tmp_path / "out"),
                          str(tmp_path / "01_sleepy.ipynb")], check=False, capture_output=True, text=True,
                         timeout=120)
    # it ran, and its findings would show Jupyter a glue role: the runner says so, after the time
    assert run.returncode == 1 and "    done in " in run.stdout, run.stdout + run.stderr
    assert "FAILED: 01_sleepy.ipynb: its findings show a {glue} role" in run.stderr, run.stderr
    beats = [line for line in run.stdout.splitlines() if line.startswith("    01_sleepy: cell 1 of 2, ")]
    assert len(beats) >= 4, run.stdout
    assert all(re.search(r"\d+ min \d\d s in the cell, \d+ min \d\d s in the chapter \| import time", b) for b in beats)
    assert max(int(re.search(r"(\d\d) s in the cell", b).group(1)) for b in beats) >= 3, beats
    assert any(b.endswith("| warming up") for b in beats), beats
    assert any(re.search(r"\| counting: +\d+% ?\|?.* [0-3]/3 \[", b) for b in beats), beats
    timings = json.loads((tmp_path / "out" / "timings.json").read_text())
    assert set(timings) == {"params", "seconds", "started", "invocation"}


def test_heartbeat_reads_a_tqdm_widget_and_the_last_line_of_text():
    heartbeat = load_runner().Heartbeat("01_x")
    heartbeat.write("loading\nsampling:  10%|#         | 1/10\r")
    assert heartbeat.doing == "sampling:  10%|#         | 1/10"
    opened = {"ltext": {"_model_name": "HTMLModel", "value": "tuning"},
              "pbar": {"_model_name": "IntProgressModel", "value": 0, "max": 63},
              "rtext": {"_model_name": "HTMLModel", "value": ""},
              "box": {"_model_name": "HBoxModel", "children": ["IPY_MODEL_ltext", "IPY_MODEL_pbar", "IPY_MODEL_rtext"]}}
    for model_id, state in opened.items():
        heartbeat.widget_message({"comm_id": model_id, "data": {"state": state, "buffer_paths": []}})
    for model_id, state in [("pbar", {"value": 12}), ("ltext", {"value": "tuning:\u2007\u200719%"}),
                            ("rtext", {"value": "12/63\u2007[00:10&lt;00:40,\u20071.20it/s]"})]:
        heartbeat.widget_message({"comm_id": model_id, "data": {"method": "update", "state": state}})
    assert heartbeat.doing == "tuning: 19% 12/63 [00:10<00:40, 1.20it/s]"
    heartbeat.widget_message({"comm_id": "other", "data": {"method": "custom", "content": {}}})
    assert heartbeat.line().endswith("in the chapter | tuning: 19% 12/63 [00:10<00:40, 1.20it/s]")
