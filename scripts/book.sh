#!/usr/bin/env bash
# Set up (or reuse) .venv, execute every notebook with papermill, then build the book into _build/html.
# Usage: bash scripts/book.sh [PARAMS_FILE]   (default: the notebooks' own defaults, the full CPU run)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PARAMS=(); [ $# -ge 1 ] && PARAMS=(--params "$1")
.venv/bin/python scripts/run_notebooks.py "${PARAMS[@]}" --output _build/executed
.venv/bin/python scripts/build_book.py --executed _build/executed
