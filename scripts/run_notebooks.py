"""Execute the book's notebooks in order with papermill.

    python scripts/run_notebooks.py --params params/ci.yaml --output _build/executed

The params file maps ``all`` (parameters for every notebook that declares them) and
notebook stems (``01_measuring_bias``) to parameter overrides. Stops at the first failing
notebook, naming it and the failing cell (with ``--jobs``, starts no other; those running finish).
Wall times go to ``<output>/timings.json``, with when each chapter started and which runner
invocation ran it (so a book run in pieces says so).

While a chapter runs, a line every ``--heartbeat`` seconds (60) says it is alive, also inside
one long cell: the cell, the time in it and in the chapter, the cell's first line of code, and its
latest text output or progress bar (one line, wrapped here):

    04_leave_one_out: cell 12 of 40, 5 min 03 s in the cell, 21 min 40 s in the chapter
        | start = time.perf_counter() | tuning: 19% 12/63 [00:10<00:40, 1.20it/s]

With ``--jobs 2`` (CI) two chapters run at a time, each in its own runner process with half the
cores (``OMP_NUM_THREADS``, unless it is set). A chapter starts only after the chapters whose cached runs it reads
(``READS``): run before them it would tune those runs itself. Of the chapters ready, the one at
the head of the longest chain of chapters still to run goes first, by the last recorded times of
the same parameters (``benchmarks/book_timings.json``). timings.json then notes ``jobs`` for those
chapters, and a chapter's time is its own wall time, beside another chapter's.
"""
import argparse
import datetime
import html
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import papermill
import yaml
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.log import logger

try:
    import fcntl   # POSIX: chapters running side by side write timings.json in turn
except ImportError:
    fcntl = None   # Windows: one chapter at a time (the default) needs no lock

ROOT = Path(__file__).resolve().parent.parent
BOOK_TIMINGS = ROOT / "benchmarks" / "book_timings.json"   # recorded runs: the scheduler's estimates
HEARTBEAT_SECONDS = 60   # a running chapter prints a line at least this often
PROGRESS_MODELS = {"IntProgressModel", "FloatProgressModel"}   # the bar of tqdm.notebook's widget


def minutes(seconds: float) -> str:
    """``"5 min 03 s"``."""
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


class Heartbeat:
    """Prints, every ``interval`` seconds on a background thread, which cell of a running notebook
    is executing, for how long, and what it is doing: its first line of code, then whichever came
    last of its text output (stdout and stderr) and its progress bars.

    A kernel's ``tqdm.auto`` bars are ipywidgets: no text reaches the runner, only widget messages
    (a bar is an HBox of an HTML description, a progress model and an HTML count), which
    ``widget_message`` follows. The notebook client calls ``notebook_started``, ``cell_started``,
    ``write`` and ``widget_message`` on the main thread; the thread only reads strings they set.

        with Heartbeat("01_measuring_bias") as heartbeat:
            papermill.execute_notebook(..., engine_name="heartbeat", heartbeat=heartbeat)
    """

    def __init__(self, name: str, interval: float = HEARTBEAT_SECONDS, out=None):
        self.name, self.interval, self.out = name, interval, out   # out: a file; None is sys.stdout
        self.cells, self.cell, self.source, self.doing = 0, 0, "", "starting the kernel"
        self.chapter_start = self.cell_start = time.monotonic()
        self.widgets, self.parent = {}, {}   # widget state by model id; a bar's parts -> its HBox
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {name}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()

    def _beat(self):
        while not self._stop.wait(self.interval):
            print(self.line(), file=self.out, flush=True)

    def line(self) -> str:
        now = time.monotonic()
        where = f"cell {self.cell} of {self.cells}, {minutes(now - self.cell_start)} in the cell, " if self.cell else ""
        what = " | ".join(part for part in (self.source, self.doing) if part)
        return f"    {self.name}: {where}{minutes(now - self.chapter_start)} in the chapter | {what}"

    def notebook_started(self, notebook, **_):
        self.cells = len(notebook.cells)

    def cell_started(self, cell, cell_index: int, **_):
        """nbclient's ``on_cell_execute`` hook: a code cell is about to run."""
        self.cell, self.cell_start, self.doing = cell_index + 1, time.monotonic(), ""
        self.source = next((line.strip()[:60] for line in cell.source.splitlines() if line.strip()), "")

    def write(self, text: str):
        """The cell's stdout and stderr, as papermill forwards them (``stdout_file``, ``stderr_file``)."""
        lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
        if lines:
            self.doing = lines[-1][:120]

    def flush(self):
        pass

    def widget_message(self, content: dict):
        """A widget's ``comm_open`` or ``comm_msg`` (Jupyter widget protocol: ``data.state``)."""
        state = (content.get("data") or {}).get("state")
        if not state:
            return
        model_id = content["comm_id"]
        self.widgets.setdefault(model_id, {}).update(state)
        for child in state.get("children", []):
            self.parent[child.removeprefix("IPY_MODEL_")] = model_id
        parts = [self.widgets.get(child.removeprefix("IPY_MODEL_"), {})
                 for child in self.widgets.get(self.parent.get(model_id), {}).get("children", [])]
        if len(parts) == 3 and parts[1].get("_model_name") in PROGRESS_MODELS and "value" in state:
            text = html.unescape(f"{parts[0].get('value', '')} {parts[2].get('value', '')}")
            self.doing = " ".join(text.replace("\u2007", " ").split())


class HeartbeatClient(PapermillNotebookClient):
    """papermill's notebook client, reporting to a ``Heartbeat``: nbclient's hooks for the cells,
    papermill's stream files for the text output, and the widget messages it handles."""

    def __init__(self, nb_man, heartbeat: Heartbeat, **kwargs):
        super().__init__(nb_man, stdout_file=heartbeat, stderr_file=heartbeat,
                         on_notebook_start=heartbeat.notebook_started, on_cell_execute=heartbeat.cell_started,
                         **kwargs)
        self.heartbeat = heartbeat

    def handle_comm_msg(self, outs, msg, cell_index):
        super().handle_comm_msg(outs, msg, cell_index)
        self.heartbeat.widget_message(msg["content"])


class HeartbeatEngine(NBClientEngine):
    """papermill's nbclient engine with a ``HeartbeatClient`` (``engine_name="heartbeat"``)."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, heartbeat, log_output=False, start_timeout=60, **_):
        return HeartbeatClient(nb_man, heartbeat, kernel_name=kernel_name, startup_timeout=start_timeout,
                               log=logger, log_output=log_output).execute()


def run_notebook(notebook: Path, output: Path, overrides: dict, heartbeat_seconds: float = HEARTBEAT_SECONDS):
    """Execute one notebook into ``output``, with a heartbeat line every ``heartbeat_seconds``."""
    papermill_engines.register("heartbeat", HeartbeatEngine)
    with Heartbeat(notebook.stem, heartbeat_seconds) as heartbeat:
        papermill.execute_notebook(str(notebook), str(output), parameters=overrides, cwd=str(ROOT),
                                   kernel_name="python3", progress_bar=False, engine_name="heartbeat",
                                   heartbeat=heartbeat)


FINDINGS_CALL = re.compile(r"\bfindings\(")   # the "What we saw" cell: report.findings(...)


def findings_problem(executed: Path) -> str | None:
    """What a reader in Jupyter or Colab would miss in an executed chapter's findings, or None.

    The "What we saw" cell (the code cell calling ``findings(``) must show Markdown with its
    numbers written in: a ``{glue:}`` role renders only in the book. A notebook without such a
    cell has nothing to check."""
    cells = [cell for cell in json.loads(executed.read_text())["cells"]
             if cell["cell_type"] == "code" and FINDINGS_CALL.search("".join(cell["source"]))]
    if not cells:
        return None
    shown = "".join("".join(output.get("data", {}).get("text/markdown", ""))
                    for cell in cells for output in cell.get("outputs", []))
    if not shown:
        return "its findings cell shows no Markdown output"
    if "{glue" in shown:
        return "its findings show a {glue} role, which Jupyter does not render: write the value in"
    if not re.search(r"\d", shown):
        return "its findings show no number"
    return None


def parameters_for(params: dict, notebook: Path) -> dict:
    """Overrides for one notebook: the ``all`` entries it declares, then its own block (which must
    name only parameters it declares)."""
    declared = papermill.inspect_notebook(str(notebook))
    own = params.get(notebook.stem) or {}
    unknown = sorted(set(own) - set(declared))
    if unknown:
        raise SystemExit(f"{notebook.name} has no parameters {unknown}; it declares {sorted(declared)}")
    shared = {k: v for k, v in (params.get("all") or {}).items() if k in declared}
    return {**shared, **own}


def write_timings(path: Path, params, timings: dict, started: dict | None = None,
                  invocation: dict | None = None, jobs: dict | None = None) -> None:
    """Wall time per notebook so far (written after each one, so later notebooks can read it), and
    optionally when each started (``started``) and when the runner invocation that ran it started
    (``invocation``), both ISO times by notebook stem, and for a notebook run beside others how many
    ran at a time (``jobs``, by stem; a notebook written without one ran alone).

    Entries of other notebooks already in the file from a run with the same parameters are kept,
    so re-running one chapter does not erase the others' times, and a book run in pieces (one
    runner invocation a chapter) adds up in one file. Chapters running side by side write in turn
    (a lock beside the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        if fcntl:
            fcntl.flock(lock, fcntl.LOCK_EX)
        label = str(params or "notebook defaults")
        earlier = json.loads(path.read_text()) if path.exists() else {}
        same = earlier.get("params") == label
        record = {"params": label}
        for key, new in (("seconds", timings), ("started", started), ("invocation", invocation)):
            merged = {**(earlier.get(key, {}) if same else {}), **(new or {})}
            if merged or key == "seconds":
                record[key] = merged
        side = {stem: n for stem, n in (earlier.get("jobs", {}) if same else {}).items() if stem not in timings}
        side.update(jobs or {})
        if side:
            record["jobs"] = side
        path.write_text(json.dumps(record, indent=2))


def now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


# The chapters whose tuned runs (adapters, and the measures and generations of them) a chapter
# reads. Generations of the base model or of a run a chapter waits for anyway may be drawn by
# whichever chapter comes first: the first n of a larger draw are that draw's start, so only who
# spends the time changes. Pages numbered 9x (the Performance page) read every chapter's time and
# run last.
READS = {
    "05_synthetic_biographies": ("04_leave_one_out",),
    "06_is_tuning_worth_it": ("03_lora_tuning", "04_leave_one_out"),
    "07_what_it_takes": ("03_lora_tuning", "04_leave_one_out"),
    "08_beyond_the_paper": ("03_lora_tuning", "04_leave_one_out", "07_what_it_takes"),
}


def waits_for(stem: str, stems: list[str]) -> set[str]:
    """The notebooks among ``stems`` that must end before ``stem`` starts."""
    if stem.startswith("9"):
        return {other for other in stems if not other.startswith("9")}
    return set(READS.get(stem, ())) & set(stems)


def chain_seconds(stems: list[str], estimates: dict) -> dict:
    """For each notebook, the longest chain of estimated seconds from its start to the end of the
    notebooks that wait for it (a notebook without an estimate counts one second)."""
    chains = {}

    def chain(stem):
        if stem not in chains:
            after = [chain(other) for other in stems if stem in waits_for(other, stems)]
            chains[stem] = estimates.get(stem, 1.0) + max(after, default=0.0)
        return chains[stem]
    return {stem: chain(stem) for stem in stems}


def next_ready(pending: list[str], done: set[str], stems: list[str], chains: dict) -> str | None:
    """Of the pending notebooks whose waits are over, the one heading the longest chain (the first
    in book order on a tie); None while every pending one waits."""
    ready = [stem for stem in pending if waits_for(stem, stems) <= done]
    return max(ready, key=lambda stem: (chains[stem], -pending.index(stem)), default=None)


def recorded_estimates(params_label: str, path: Path = BOOK_TIMINGS) -> dict:
    """Each chapter's seconds in the last recorded run with these parameters that ran it (a partial
    or pieced run counts for the chapters it has); none recorded: an empty dict."""
    recorded = json.loads(path.read_text()) if path.exists() else {}
    estimates = {}
    for run in recorded.values():   # in the file's order: a later run's time replaces an earlier one's
        if run.get("params") == params_label:
            estimates.update(run["chapter_seconds"])
    return estimates


def run_side_by_side(notebooks: list[Path], args, jobs: int) -> int:
    """Run the notebooks ``jobs`` at a time, one runner process each (this script, one notebook).
    A failing notebook stops new starts; those running finish. Stopped itself, it stops them."""
    stems, by_stem = [nb.stem for nb in notebooks], {nb.stem: nb for nb in notebooks}
    if len(by_stem) < len(stems):
        raise SystemExit(f"a notebook is named twice: {sorted(s for s in stems if stems.count(s) > 1)}")
    chains = chain_seconds(stems, recorded_estimates(str(args.params or "notebook defaults")))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, cores // jobs))
    env, invocation = {**os.environ, "OMP_NUM_THREADS": threads}, now()
    command = [sys.executable, __file__, "--output", str(args.output), "--heartbeat", str(args.heartbeat),
               "--jobs", str(jobs), "--invocation", invocation]
    command += ["--params", str(args.params)] if args.params else []
    pending, running, done, failed = list(stems), {}, set(), []
    print(f"{len(stems)} notebooks, {jobs} at a time, {threads} torch thread(s) each", flush=True)
    try:
        while running or (pending and not failed):
            while pending and not failed and len(running) < jobs:
                stem = next_ready(pending, done, stems, chains)
                if stem is None:
                    break
                pending.remove(stem)
                print(f"starting {stem} ({len(stems) - len(pending)}/{len(stems)})", flush=True)
                running[stem] = subprocess.Popen(command + [str(by_stem[stem])], env=env)
            if not running and pending and not failed:
                raise SystemExit(f"{pending} wait for one another (READS)")
            time.sleep(0.5)
            for stem, process in list(running.items()):
                if process.poll() is not None:
                    del running[stem]
                    (done.add if process.returncode == 0 else failed.append)(stem)
    finally:
        for process in running.values():   # stopped (Ctrl-C, a kill, an error): so are they
            process.terminate()
            process.wait()
    if failed:
        print(f"FAILED: {', '.join(failed)} (the output above says where); {len(pending)} notebooks "
              "not started", file=sys.stderr)
        return 1
    print(f"all {len(stems)} notebooks ran, {jobs} at a time", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, help="YAML file of parameter overrides (default: none)")
    parser.add_argument("--output", type=Path, default=ROOT / "_build" / "executed")
    parser.add_argument("--heartbeat", type=float, default=HEARTBEAT_SECONDS, metavar="SECONDS",
                        help=f"print a line on the running chapter this often (default {HEARTBEAT_SECONDS})")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="run N notebooks at a time, in the order their cached runs allow (default 1)")
    parser.add_argument("--invocation", help=argparse.SUPPRESS)   # set by --jobs for the notebooks it starts
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/[0-9]*.ipynb")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs must be 1 or more; got {args.jobs}")
    params = yaml.safe_load(args.params.read_text()) or {} if args.params else {}
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    args.output.mkdir(parents=True, exist_ok=True)
    if args.jobs > 1 and len(notebooks) > 1:
        if fcntl is None:
            parser.error("--jobs needs a POSIX system (its chapters write timings.json in turn)")
        for notebook in notebooks:
            parameters_for(params, notebook)   # every notebook's parameters checked before any runs
        return run_side_by_side(notebooks, args, args.jobs)
    timings, started, invocation = {}, {}, args.invocation or now()
    for number, notebook in enumerate(notebooks, 1):
        overrides = parameters_for(params, notebook)
        print(f"[{number}/{len(notebooks)}] {notebook.name} {overrides or ''}", flush=True)
        started[notebook.stem], start = now(), time.perf_counter()
        try:
            run_notebook(notebook, args.output / notebook.name, overrides, args.heartbeat)
        except papermill.PapermillExecutionError as error:
            print(f"FAILED: {notebook.name}, cell {error.exec_count} (index {error.cell_index}): "
                  f"{error.ename}: {error.evalue}\nExecuted copy with the traceback: "
                  f"{args.output / notebook.name}", file=sys.stderr)
            return 1
        timings[notebook.stem] = round(time.perf_counter() - start, 1)
        print(f"    {notebook.stem} done in {timings[notebook.stem]:.0f} s", flush=True)
        side = dict.fromkeys(timings, args.jobs) if args.invocation and args.jobs > 1 else None
        write_timings(args.output / "timings.json", args.params, timings, started,
                      dict.fromkeys(timings, invocation), side)
        problem = findings_problem(args.output / notebook.name)
        if problem:
            print(f"FAILED: {notebook.name}: {problem}", file=sys.stderr)
            return 1
    print(f"all {len(notebooks)} notebooks ran in {sum(timings.values()):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
