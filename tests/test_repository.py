"""Repository hygiene: clean notebooks with a parameters cell, and pins that agree across files."""
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

from conftest import load_script


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_the_table_of_contents(path):
    toc = (ROOT / "_toc.yml").read_text()
    assert f"notebooks/{path.stem}" in toc


def constraint_pins() -> dict[str, str]:
    """``{name: version}`` of constraints.txt, the exact versions scripts/setup.sh installs."""
    lines = [line.split("#")[0].strip() for line in (ROOT / "constraints.txt").read_text().splitlines()]
    return {n.lower(): v for n, v in (line.split("==") for line in lines if line)}


def test_constraints_pin_every_dependency_within_its_range():
    """pyproject.toml gives ranges (so that Colab keeps its numpy and pandas); constraints.txt pins each one
    (torch aside: scripts/setup.sh installs its CPU or CUDA build first) to a version inside its range."""
    from packaging.requirements import Requirement
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(d) for d in project["dependencies"] + sum(project["optional-dependencies"].values(), [])]
    assert not [str(r) for r in declared if any(s.operator == "==" for s in r.specifier)], "pins belong in constraints.txt"
    pins = constraint_pins()
    assert {r.name.lower() for r in declared} - {"torch"} == set(pins)
    outside = [f"{r} (constraints.txt: {pins[r.name.lower()]})" for r in declared
               if r.name != "torch" and not r.specifier.contains(pins[r.name.lower()], prereleases=True)]
    assert not outside, f"pins outside pyproject.toml's ranges: {outside}"
    assert "-c constraints.txt" in (ROOT / "scripts" / "setup.sh").read_text()


def test_environment_yml_pins_match_constraints():
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert conda["dependencies"][0] == "python=3.11"
    pip_block = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    conda_pins = {d.split("==")[0].lower(): d.split("==")[1] for d in pip_block if "==" in d}
    assert {k: v for k, v in conda_pins.items() if k != "torch"} == constraint_pins()


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
    runner = load_script("scripts/run_notebooks.py")
    path = tmp_path / "timings.json"
    runner.write_timings(path, None, {"01_a": 1.0, "02_b": 2.0})
    runner.write_timings(path, None, {"02_b": 3.0})
    assert json.loads(path.read_text())["seconds"] == {"01_a": 1.0, "02_b": 3.0}
    runner.write_timings(path, "params/ci.yaml", {"02_b": 4.0})  # other parameters: start afresh
    assert json.loads(path.read_text()) == {"params": "params/ci.yaml", "seconds": {"02_b": 4.0}}


def repo_script(name: str):
    """``scripts/<name>.py`` as a module."""
    return load_script(f"scripts/{name}.py")


# Any GitHub repository named in a notebook: a link, a `pip install git+...`, a clone or a Colab link.
REPOSITORY_ADDRESS = re.compile(r"(?:github\.com|colab\.research\.google\.com/github)/([\w.-]+)/([\w.-]+)")


def configured_repository() -> tuple[str, str, str]:
    """``(url, owner/name, branch)`` read from ``_config.yml`` here, independently of the script."""
    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    url = repository["url"].rstrip("/")
    return url, url.removeprefix("https://github.com/"), repository.get("branch", "main")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_names_only_the_configured_repository(path):
    url, owner_repo, branch = configured_repository()
    text = path.read_text()
    named = {f"{owner}/{name}" for owner, name in REPOSITORY_ADDRESS.findall(text)}
    assert named <= {owner_repo}, (f"{path.name} names {sorted(named - {owner_repo})}, but _config.yml's "
                                   f"repository.url is {url}: run scripts/set_repository.py")
    cells = json.loads(text)["cells"]
    setup = "".join(cells[1]["source"])
    assert f"git+{url}@{branch}" in setup or f"-b {branch} {url}" in setup, \
        f"{path.name}: the set-up cell should install or clone {url} at {branch}"


def test_colab_button_is_the_books_launch_button():
    """Each page's one Colab button is sphinx-book-theme's launch button, built from ``_config.yml``'s
    repository (the site check follows its link); a notebook carries no badge of its own."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert config["html"]["use_repository_button"] is True
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", config["repository"]["url"].rstrip("/"))
    badged = [p.name for p in NOTEBOOKS if "colab-badge" in "".join(json.loads(p.read_text())["cells"][0]["source"])]
    assert not badged, f"{badged}: drop the Open in Colab badge; the page's launch button is its Colab button"


def test_set_repository_moves_every_address_to_a_fork_and_back():
    script = repo_script("set_repository")
    url, owner_repo, branch = configured_repository()
    assert script.configured_repository() == (url, branch)
    for path in NOTEBOOKS:
        text = path.read_text()
        fork = script.retarget(text, "https://github.com/someone/my-fork", "dev")
        assert {f"{o}/{n}" for o, n in REPOSITORY_ADDRESS.findall(fork)} == {"someone/my-fork"}, path.name
        assert "git+https://github.com/someone/my-fork@dev" in fork or "-b dev https://github.com/someone/my-fork" in fork
        assert script.retarget(fork, url, branch) == text, f"{path.name}: the round trip changed the notebook"
    link = "https://colab.research.google.com/github/a/b/blob/main/notebooks/01_x.ipynb"   # a Colab link in a text
    assert script.retarget(link, "https://github.com/c/d", "dev") == link.replace("a/b/blob/main", "c/d/blob/dev")


def test_set_repository_rejects_an_address_it_cannot_write(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://gitlab.com/someone/fork\n")
    with pytest.raises(SystemExit, match="repository.url must be https://github.com/OWNER/NAME"):
        repo_script("set_repository").configured_repository(tmp_path / "_config.yml")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_reads_every_assignment_of_the_parameters_cell(path):
    """A comment papermill cannot parse (e.g. one holding "=") hides its parameter from
    papermill, and the runner then refuses a params file that sets it."""
    import ast

    import papermill

    cells = json.loads(path.read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if "parameters" in c["metadata"].get("tags", []))
    assigned = {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign) for t in node.targets}
    assert assigned <= set(papermill.inspect_notebook(str(path))), path.name
