"""scripts/setup.sh stops with a clear message on a Python older than 3.11, and on a machine whose python3
cannot make a working venv (Debian without python3-venv): the broken .venv such an attempt leaves, or
any .venv without a working python or pip, is removed instead of being reused by every later run.

Each case runs the real script in a copy of its folder, with a stand-in ``python3`` first on PATH; none
gets as far as installing anything.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL_PYTHON = getattr(sys, "_base_executable", sys.executable)
# python3 as on Debian without python3-venv: `python3 -m venv DIR` leaves DIR with a python but no pip, and fails.
NO_VENV_MODULE = f"""#!/usr/bin/env bash
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  "{REAL_PYTHON}" -m venv --without-pip "$3"
  echo "The virtual environment was not created successfully because ensurepip is not available." >&2
  exit 1
fi
exec "{REAL_PYTHON}" "$@"
"""
# python3 3.10: answers the script's version questions as Python 3.10.12 would.
PYTHON_310 = """#!/usr/bin/env bash
case "$2" in
  *version_info*) exit 1 ;;
  *python_version*) echo 3.10.12 ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""


def run_setup(tmp_path: Path, python3: str) -> subprocess.CompletedProcess:
    (tmp_path / "scripts").mkdir(exist_ok=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "python3").write_text(python3)
    (fake / "python3").chmod(0o755)
    env = {"PATH": f"{fake}:/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(["bash", str(tmp_path / "scripts" / "setup.sh")], capture_output=True, text=True,
                          env=env, timeout=120)


def test_python_older_than_3_11_stops_before_making_a_venv(tmp_path):
    result = run_setup(tmp_path, PYTHON_310)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "python3 is Python 3.10.12" in result.stderr and "3.11 or newer" in result.stderr
    assert not (tmp_path / ".venv").exists()


@pytest.mark.parametrize("broken", ["no python", "no pip"])
def test_broken_venv_is_removed_and_the_missing_venv_module_named(tmp_path, broken):
    venv = tmp_path / ".venv"
    if broken == "no python":  # e.g. an interrupted copy: a bin folder, no interpreter
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").write_text("")
    else:  # what `python3 -m venv` leaves on Debian without python3-venv
        subprocess.run([REAL_PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True)
        assert subprocess.run([venv / "bin" / "python", "-c", "pass"]).returncode == 0
    result = run_setup(tmp_path, NO_VENV_MODULE)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "setup: .venv is broken (no working .venv/bin/python, or no pip in it): removing it" in result.stdout
    assert "apt-get install python3-venv" in result.stderr
    assert not venv.exists(), "the venv the failed attempt left must not stay for the next run to reuse"
    # Run again: the same clear message, not a reused broken venv.
    again = run_setup(tmp_path, NO_VENV_MODULE)
    assert again.returncode == 1 and "apt-get install python3-venv" in again.stderr and not venv.exists()
