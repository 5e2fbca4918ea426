"""Install the package the way a reader does and run a chapter against that copy, outside the repository.

    python scripts/check_installed.py [--params params/ci.yaml] [--chapter 02_kl_equivalence]

Builds the wheel (``pip wheel --no-deps``) from a copy of the package sources, installs it into a
temporary folder (``pip install --no-deps --target``), then, from a working directory outside the
repository and with Python started without site processing (so the checkout's editable install is
invisible; dependencies come from this virtualenv's site-packages):

1. imports ``diffuse_utils``, checks it is the installed copy, and reads every packaged data file
   through the package's own loaders (the six task families, the biographies task, the land outline);
2. executes one chapter with papermill under the given parameters.

Exits non-zero, naming the failure, otherwise. ``tests/test_install.py`` runs step 1; CI runs both.
"""
import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "diffuse_utils")
KERNEL = "diffuse-installed"

# Run inside the installed copy: prints where it was imported from and what each loader read.
PROBE = """
import json, diffuse_utils
from diffuse_utils import biographies, places, suite
families = suite.load_suite()
print(json.dumps({
    "file": diffuse_utils.__file__,
    "families": {f.name: sum(len(t.targets) for t in f.subtasks) for f in families},
    "biography_targets": len(biographies.biography_task().targets),
    "land_rings": sum(len(polygon) for polygon in places.land_polygons()),
}))
"""


def pip(*args: str) -> None:
    """Run ``pip`` quietly with this Python; its error output in the exception when it fails."""
    result = subprocess.run([sys.executable, "-m", "pip", *args, "-q"], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pip {' '.join(args)} failed:\n{result.stderr[-3000:]}")


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
    pip("wheel", "--no-deps", *isolation, "-w", str(dist), str(source))
    wheels = sorted(dist.glob("diffuse_utils-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {dist}, found {[w.name for w in wheels]}")
    return wheels[0]


def install(wheel: Path, target: Path) -> Path:
    """``pip install --no-deps --target target wheel``; returns ``target``."""
    pip("install", "--no-deps", "--no-index", "--target", str(target), str(wheel))
    return target


def isolated_python(target: Path) -> tuple[list[str], dict]:
    """Command prefix and environment for a Python that sees ``target`` first and this venv's
    site-packages for dependencies, without site processing (no ``.pth`` files: no editable install)."""
    site_packages = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *site_packages])}
    return [sys.executable, "-S"], env


def probe(target: Path, workdir: Path) -> dict:
    """Import the installed copy from ``workdir`` and read its data (see ``PROBE``); the results."""
    command, env = isolated_python(target)
    result = subprocess.run(command + ["-c", PROBE], cwd=workdir, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"the installed copy failed to load its data:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def register_kernel(target: Path, folder: Path) -> None:
    """A Jupyter kernel named ``KERNEL`` that runs the isolated Python; found through ``JUPYTER_PATH``."""
    command, env = isolated_python(target)
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": command + ["-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "diffuse (installed copy)", "language": "python",
        "env": {"PYTHONPATH": env["PYTHONPATH"]}}))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(folder), os.environ.get("JUPYTER_PATH")]))


def run_chapter(stem: str, params_file: Path, target: Path, workdir: Path) -> Path:
    """Execute ``notebooks/<stem>.ipynb`` with its overrides from ``params_file`` in ``workdir``."""
    import papermill
    import yaml
    sys.path.insert(0, str(ROOT / "scripts"))
    from run_notebooks import parameters_for
    notebook = ROOT / "notebooks" / f"{stem}.ipynb"
    overrides = parameters_for(yaml.safe_load(params_file.read_text()) or {}, notebook)
    register_kernel(target, workdir / "jupyter")
    executed = workdir / notebook.name
    papermill.execute_notebook(str(notebook), str(executed), parameters=overrides, cwd=str(workdir),
                               kernel_name=KERNEL, progress_bar=False)
    return executed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=ROOT / "params" / "ci.yaml")
    parser.add_argument("--chapter", default="02_kl_equivalence", help="notebook stem (default: the cheapest)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="diffuse-installed-") as tmp:
        folder = Path(tmp)
        target, workdir = install(build_wheel(folder / "build"), folder / "site"), folder / "work"
        workdir.mkdir()
        found = probe(target, workdir)
        if not Path(found["file"]).resolve().is_relative_to(target.resolve()):
            print(f"FAILED: diffuse_utils imported from {found['file']}, not the installed copy", file=sys.stderr)
            return 1
        print(f"installed copy reads its data: {json.dumps({k: v for k, v in found.items() if k != 'file'})}")
        try:
            run_chapter(args.chapter, args.params.resolve(), target, workdir)
        except Exception as error:  # papermill's error names the failing cell
            print(f"FAILED: {args.chapter} against the installed copy: {error}", file=sys.stderr)
            return 1
        print(f"{args.chapter} ran against the installed copy in {workdir} (outside the repository)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
