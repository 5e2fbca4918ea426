"""The book runner's heartbeat: a long cell says, at least every interval, that it is alive."""
import json
import os
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
    assert run.returncode == 1 and "    01_sleepy done in " in run.stdout, run.stdout + run.stderr
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


# A cell that notes when it started and ended, seconds apart, in a file named after its notebook.
STAMPED_CELL = """import json, time
from pathlib import Path
start = time.time()
time.sleep({sleep})
Path({path!r}).write_text(json.dumps([start, time.time()]))"""


def test_chapters_run_side_by_side_after_the_chapters_whose_runs_they_read(tmp_path):
    """Chapters 1 and 4 side by side, chapter 5 (which reads chapter 4's adapter) after 4; chapter 5
    fails after noting its start, and the runner says so and fails."""
    stems = ["01_measuring_bias", "04_leave_one_out", "05_synthetic_biographies"]
    for stem, sleep in zip(stems, (3, 3, 0)):   # seconds: more than a child takes to start
        cell = STAMPED_CELL.format(sleep=sleep, path=str(tmp_path / f"{stem}.json"))
        cells = [nbformat.v4.new_code_cell(cell)]
        if stem.startswith("05"):
            cells.append(nbformat.v4.new_code_cell("raise ValueError('no adapter')"))
        notebook = nbformat.v4.new_notebook(cells=cells)
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, tmp_path / f"{stem}.ipynb")
    run = subprocess.run([sys.executable, str(SCRIPT), "--jobs", "2", "--output", str(tmp_path / "out"),
                          *(str(tmp_path / f"{stem}.ipynb") for stem in stems)],
                         check=False, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "3 notebooks, 2 at a time, 1 torch thread(s) each" in run.stdout
    assert "FAILED: 05_synthetic_biographies.ipynb, cell 2" in run.stderr, run.stderr
    assert "FAILED: 05_synthetic_biographies (the output above says where)" in run.stderr
    ran = {stem: json.loads((tmp_path / f"{stem}.json").read_text()) for stem in stems}
    first, leave_one_out, biographies = (ran[stem] for stem in stems)
    assert first[0] < leave_one_out[1] and leave_one_out[0] < first[1]   # side by side
    assert biographies[0] > leave_one_out[1]   # chapter 5 reads chapter 4's adapter
    timings = json.loads((tmp_path / "out" / "timings.json").read_text())
    assert timings["jobs"] == dict.fromkeys(stems[:2], 2) and set(timings["seconds"]) == set(stems[:2])
    assert len(set(timings["invocation"].values())) == 1   # one run, not two pieces


def test_the_longest_chain_of_chapters_starts_first():
    runner = load_runner()
    stems = ["01_measuring_bias", "03_lora_tuning", "04_leave_one_out", "07_what_it_takes",
             "08_beyond_the_paper", "90_performance"]
    estimates = {"01_measuring_bias": 26, "03_lora_tuning": 17, "04_leave_one_out": 34,
                 "07_what_it_takes": 74, "08_beyond_the_paper": 38, "90_performance": 6}
    chains = runner.chain_seconds(stems, estimates)
    assert chains["04_leave_one_out"] == 34 + 74 + 38 + 6 and chains["01_measuring_bias"] == 26 + 6
    assert runner.next_ready(stems, set(), stems, chains) == "04_leave_one_out"
    pending = [stem for stem in stems if stem != "04_leave_one_out"]
    assert runner.next_ready(pending, set(), stems, chains) == "03_lora_tuning"
    assert runner.next_ready(pending[2:], {"01_measuring_bias"}, stems, chains) is None  # 07 waits for 03, 04
    assert runner.waits_for("90_performance", stems) == set(stems) - {"90_performance"}
    assert runner.chain_seconds(["02_kl_equivalence"], {}) == {"02_kl_equivalence": 1.0}


def test_reads_names_every_chapter_whose_shared_runs_a_chapter_tunes_from():
    """A chapter naming chapter 3's shared runs (rng, babynames) or chapter 4's (six_tasks) waits for
    that chapter when chapters run side by side; otherwise it would tune them a second time."""
    runner = load_runner()
    makers = {"rng": "03_lora_tuning", "babynames": "03_lora_tuning", "six_tasks": "04_leave_one_out"}
    for path in sorted((ROOT / "notebooks").glob("[0-8][0-9]_*.ipynb")):
        source = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
        shared = set(re.findall(r'profiles\.(?:run|entry)\(\s*"(\w+)"', source))
        needed = {makers[name] for name in shared if name in makers} - {path.stem}
        assert needed <= set(runner.READS.get(path.stem, ())), (path.stem, needed)
        if path.stem.startswith("07"):
            assert shared >= {"babynames", "six_tasks"}   # the pattern finds what is there
