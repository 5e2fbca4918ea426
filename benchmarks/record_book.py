"""Record the end-to-end wall times of a book run in benchmarks/book_timings.json (for the Performance page).

Labels name the profile: "default book" is the notebooks' own defaults (`bash scripts/book.sh`, the
CPU run); "full book" is reserved for the params/full.yaml profile; "CI" is .ci/run.

    # the default CPU book from a fresh clone, empty artifacts/:
    bash scripts/book.sh
    .venv/bin/python benchmarks/record_book.py "default book, from scratch" _build/executed/timings.json

    # the same run taken in pieces, chapter by chapter in book order (several runner invocations,
    # into one timings.json as here, or into several --output folders, all given to this script):
    .venv/bin/python scripts/run_notebooks.py notebooks/01_measuring_bias.ipynb
    .venv/bin/python scripts/run_notebooks.py notebooks/02_kl_equivalence.ipynb    # ... every chapter
    .venv/bin/python benchmarks/record_book.py "default book, from scratch, in pieces" _build/executed/timings.json

    # CI from a fresh clone (.ci/run writes its total to _build/ci_seconds.json):
    CI=true bash .ci/run
    .venv/bin/python benchmarks/record_book.py "CI (.ci/run), from scratch" _build/executed/timings.json \
        --ci-seconds _build/ci_seconds.json

The chapter times come from the book runner (scripts/run_notebooks.py). The page of a build also
shows that build's own times; this file keeps the from-scratch runs, which a cached re-run cannot show.
A run taken in pieces is recorded with "pieces": the number of runner invocations (its
chapters_total_seconds sums the chapters; the time between pieces is not in it), so it is never read
as one end-to-end run. A run that stopped early is recorded with --partial ("partial": true). A run
of chapters side by side (run_notebooks.py --jobs, as CI runs them) is recorded with "jobs" and
"chapters_wall_seconds", from the first chapter's start to the last one's end (added up over the
runner invocations of a run in pieces); its chapter times overlap, so chapters_total_seconds is more
than it took.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BOOK_CHAPTERS = sorted(path.stem for path in (HERE.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def commit(directory: Path) -> str:
    """The git commit the timed run was made from (``unknown`` outside a clone)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=directory, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> str:
    import torch
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {os.cpu_count()} cores, {gpu}"


def jobs_of(runs: list[dict]) -> int:
    """How many chapters of the runs ran at a time: 1, or the most the runner's ``jobs`` notes."""
    return max((n for run in runs for n in run.get("jobs", {}).values()), default=1)


def combine(runs: list[dict]) -> tuple[str, dict, int, dict, dict]:
    """``(params, chapter seconds, pieces, start times, invocations)`` of one book run from the
    runner's timings files (the last two by chapter).

    Pieces are the distinct runner invocations (a file written before the runner noted them counts
    as one). The files must share their parameters and not repeat a chapter, and the chapters must
    have started in book order, so no chapter ran after a later one had filled the caches; chapters
    run side by side (``jobs``) are not held to that order (the runner started each after the
    chapters its ``READS`` names)."""
    if len({run["params"] for run in runs}) > 1:
        raise SystemExit(f"the timings files have different parameters: {sorted({run['params'] for run in runs})}")
    seconds, started, invocations, invocation = {}, {}, set(), {}
    for index, run in enumerate(runs):
        if set(run["seconds"]) & set(seconds):
            raise SystemExit(f"chapters {sorted(set(run['seconds']) & set(seconds))} are in two timings files")
        seconds.update(run["seconds"])
        started.update(run.get("started", {}))
        invocation.update({stem: run.get("invocation", {}).get(stem, f"file {index}")
                           for stem in run["seconds"]})
        invocations |= {invocation[stem] for stem in run["seconds"]}
    ran = sorted((started[stem], stem) for stem in seconds if stem in started)
    if jobs_of(runs) == 1 and [stem for _, stem in ran] != sorted(stem for _, stem in ran):
        raise SystemExit(f"the chapters did not run in book order: {[stem for _, stem in ran]}")
    return runs[0]["params"], dict(sorted(seconds.items())), len(invocations), started, invocation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("label", help="what was run, e.g. 'default book, from scratch' (see above)")
    parser.add_argument("timings", type=Path, nargs="+",
                        help="timings.json written by scripts/run_notebooks.py (several for a run in pieces)")
    parser.add_argument("--ci-seconds", type=Path, help="_build/ci_seconds.json written by .ci/run")
    parser.add_argument("--output", type=Path, default=HERE / "book_timings.json")
    parser.add_argument("--partial", action="store_true",
                        help="the run stopped before its last notebook: kept, but never read as a whole book's time")
    args = parser.parse_args()
    for path in args.timings:
        if not path.exists():
            raise SystemExit(f"{path} does not exist: run the book first (bash scripts/book.sh)")
    runs = [json.loads(path.read_text()) for path in args.timings]
    params, seconds, pieces, started, invocation = combine(runs)
    missing = [stem for stem in BOOK_CHAPTERS if stem not in seconds]
    if missing and not args.partial:
        raise SystemExit(f"the run has no times for {missing}: run them, or record it with --partial")
    entry = {"params": params, "chapter_seconds": seconds, "chapters_total_seconds": round(sum(seconds.values()), 1),
             "commit": commit(args.timings[0].resolve().parent), "date": datetime.date.today().isoformat(),
             "machine": machine()}
    if pieces > 1:
        entry["pieces"] = pieces
    jobs = jobs_of(runs)
    if jobs > 1:
        from diffuse_utils.benchmark_results import chapters_wall_seconds  # the package: seconds to import

        entry["jobs"] = jobs
        entry["chapters_wall_seconds"] = chapters_wall_seconds(seconds, started, invocation)
    if args.partial:
        entry["partial"] = True
    if args.ci_seconds:
        entry["ci_total_seconds"] = json.loads(args.ci_seconds.read_text())["total_seconds"]
    recorded = json.loads(args.output.read_text()) if args.output.exists() else {}
    recorded[args.label] = entry
    args.output.write_text(json.dumps(recorded, indent=2) + "\n")
    print(f"recorded {args.label!r} in {args.output}" + (f", taken in {pieces} pieces" if pieces > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
