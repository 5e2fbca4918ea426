"""Repository hygiene: clean notebooks with a parameters cell, and pins that agree across files."""
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_exist_and_are_ordered():
    assert NOTEBOOKS, "no notebooks found"
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", n.name) for n in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean_and_parameterized(path):
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{path.name}: code cells {dirty} have outputs; clear them before committing"
    tagged = [i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters', found {len(tagged)}"
    assert "colab.research.google.com" in "".join(cells[0]["source"]), f"{path.name}: no Open in Colab badge"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_the_table_of_contents(path):
    toc = (ROOT / "_toc.yml").read_text()
    assert f"notebooks/{path.stem}" in toc


def test_environment_yml_pins_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    pins = {d.split("==")[0].lower(): d.split("==")[1] for d in declared if "==" in d}
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_block = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    conda_pins = {d.split("==")[0].lower(): d.split("==")[1] for d in pip_block if "==" in d}
    assert {k: v for k, v in conda_pins.items() if k != "torch"} == pins


def parameters_of(stem: str) -> str:
    cells = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())["cells"]
    return next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))


@pytest.mark.parametrize("path", sorted((ROOT / "params").glob("*.yaml")), ids=lambda p: p.name)
def test_parameter_files_name_real_notebooks_and_parameters(path):
    """A notebook's own overrides must be its parameters; each ``all`` entry must be some notebook's."""
    params = yaml.safe_load(path.read_text()) or {}
    stems = {p.stem for p in NOTEBOOKS}
    assert set(params) - {"all"} <= stems, f"{path.name} names unknown notebooks {set(params) - {'all'} - stems}"
    for stem in set(params) - {"all"}:
        missing = [name for name in params[stem] or {} if not re.search(rf"^{name} = ", parameters_of(stem), re.M)]
        assert not missing, f"{path.name}: {stem} has no parameters {missing}"
    for name in params.get("all") or {}:
        assert any(re.search(rf"^{name} = ", parameters_of(stem), re.M) for stem in stems), \
            f"{path.name}: no notebook has the parameter {name}"


def test_notebook_timings_keep_other_chapters_of_the_same_parameters(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "scripts" / "run_notebooks.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    path = tmp_path / "timings.json"
    runner.write_timings(path, None, {"01_a": 1.0, "02_b": 2.0})
    runner.write_timings(path, None, {"02_b": 3.0})
    assert json.loads(path.read_text())["seconds"] == {"01_a": 1.0, "02_b": 3.0}
    runner.write_timings(path, "params/ci.yaml", {"02_b": 4.0})  # other parameters: start afresh
    assert json.loads(path.read_text()) == {"params": "params/ci.yaml", "seconds": {"02_b": 4.0}}
