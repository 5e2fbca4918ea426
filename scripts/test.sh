#!/usr/bin/env bash
# Set up (or reuse) .venv, then run the unit and integration tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest -q "$@"
