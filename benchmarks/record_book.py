"""Record the end-to-end wall times of a book run in benchmarks/book_timings.json (for the Performance page).

    # the full CPU book from a fresh clone, notebook defaults, empty artifacts/:
    bash scripts/book.sh
    .venv/bin/python benchmarks/record_book.py "full book, notebook defaults, from scratch" _build/executed/timings.json

    # CI from a fresh clone (.ci/run writes its total to _build/ci_seconds.json):
    CI=true bash .ci/run
    .venv/bin/python benchmarks/record_book.py "CI (.ci/run), from scratch" _build/executed/timings.json \
        --ci-seconds _build/ci_seconds.json

The chapter times come from the book runner (scripts/run_notebooks.py). The page of a build also
shows that build's own times; this file keeps the from-scratch runs, which a cached re-run cannot show.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("label", help="what was run, e.g. 'full book, notebook defaults, from scratch'")
    parser.add_argument("timings", type=Path, help="timings.json written by scripts/run_notebooks.py")
    parser.add_argument("--ci-seconds", type=Path, help="_build/ci_seconds.json written by .ci/run")
    parser.add_argument("--output", type=Path, default=HERE / "book_timings.json")
    parser.add_argument("--partial", action="store_true",
                        help="the run stopped before its last notebook: kept, but never read as a whole book's time")
    args = parser.parse_args()
    if not args.timings.exists():
        raise SystemExit(f"{args.timings} does not exist: run the book first (bash scripts/book.sh)")
    timings = json.loads(args.timings.read_text())
    entry = {"params": timings["params"], "chapter_seconds": timings["seconds"],
             "chapters_total_seconds": round(sum(timings["seconds"].values()), 1),
             "commit": commit(args.timings.resolve().parent), "date": datetime.date.today().isoformat(),
             "machine": machine()}
    if args.partial:
        entry["partial"] = True
    if args.ci_seconds:
        entry["ci_total_seconds"] = json.loads(args.ci_seconds.read_text())["total_seconds"]
    recorded = json.loads(args.output.read_text()) if args.output.exists() else {}
    recorded[args.label] = entry
    args.output.write_text(json.dumps(recorded, indent=2) + "\n")
    print(f"recorded {args.label!r} in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
