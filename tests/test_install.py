"""The package as a reader installs it: a built wheel, installed outside the repository, carries and reads
every data file the package uses at run time (the helpers are scripts/check_installed.py's; CI also runs a
chapter against that copy)."""
import importlib.util
import zipfile
from pathlib import Path

import pytest

import diffuse_utils
from diffuse_utils import biographies, places, suite

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "diffuse_utils"
spec = importlib.util.spec_from_file_location("check_installed", ROOT / "scripts" / "check_installed.py")
check_installed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_installed)


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

