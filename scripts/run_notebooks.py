"""Execute the book's notebooks in order with papermill.

    python scripts/run_notebooks.py --params params/ci.yaml --output _build/executed

The params file maps ``all`` (parameters for every notebook that declares them) and
notebook stems (``01_measuring_bias``) to parameter overrides. Stops at the first failing
notebook, naming it and the failing cell. Wall times go to ``<output>/timings.json``.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import papermill
import yaml

ROOT = Path(__file__).resolve().parent.parent


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


def write_timings(path: Path, params, timings: dict) -> None:
    """Wall time per notebook so far (written after each one, so later notebooks can read it).

    Times of other notebooks already in the file from a run with the same parameters are kept,
    so re-running one chapter does not erase the others' times."""
    label = str(params or "notebook defaults")
    earlier = json.loads(path.read_text()) if path.exists() else {}
    kept = earlier.get("seconds", {}) if earlier.get("params") == label else {}
    path.write_text(json.dumps({"params": label, "seconds": {**kept, **timings}}, indent=2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, help="YAML file of parameter overrides (default: none)")
    parser.add_argument("--output", type=Path, default=ROOT / "_build" / "executed")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/[0-9]*.ipynb")
    args = parser.parse_args()
    params = yaml.safe_load(args.params.read_text()) or {} if args.params else {}
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    args.output.mkdir(parents=True, exist_ok=True)
    timings = {}
    for number, notebook in enumerate(notebooks, 1):
        overrides = parameters_for(params, notebook)
        print(f"[{number}/{len(notebooks)}] {notebook.name} {overrides or ''}", flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(str(notebook), str(args.output / notebook.name), parameters=overrides,
                                       cwd=str(ROOT), kernel_name="python3", progress_bar=False)
        except papermill.PapermillExecutionError as error:
            print(f"FAILED: {notebook.name}, cell {error.exec_count} (index {error.cell_index}): "
                  f"{error.ename}: {error.evalue}\nExecuted copy with the traceback: "
                  f"{args.output / notebook.name}", file=sys.stderr)
            return 1
        timings[notebook.stem] = round(time.perf_counter() - start, 1)
        print(f"    done in {timings[notebook.stem]:.0f} s", flush=True)
        write_timings(args.output / "timings.json", args.params, timings)
    print(f"all {len(notebooks)} notebooks ran in {sum(timings.values()):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
