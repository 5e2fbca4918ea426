#!/usr/bin/env bash
# Set up (or reuse) .venv, execute the notebooks with papermill, then build the book into _build/html.
# Usage: bash scripts/book.sh [PARAMS_FILE [NOTEBOOK ...]]
#   no PARAMS_FILE: params/default.yaml (the notebooks' own defaults, the profile named
#   "default" rather than left to the notebooks' "auto"); NOTEBOOKs: only these are
#   executed (the others' executed copies already in _build/executed are built as they are).
#   BOOK_JOBS=2 runs two chapters at a time (CI does), each with half the cores; their times on
#   the Performance page are then each chapter's wall time beside another.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PARAMS=(--params params/default.yaml); [ $# -ge 1 ] && PARAMS=(--params "$1") && shift
.venv/bin/python scripts/run_notebooks.py "${PARAMS[@]}" --jobs "${BOOK_JOBS:-1}" --output _build/executed "$@"
.venv/bin/python scripts/build_book.py --executed _build/executed
