"""Line width (STYLE.md convention 12): code lines at most 88 columns.

Every line of the package's modules, docstrings and comments included, and every line
of the notebooks' code cells (what a reader sees on the page).
"""

import json
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_WIDTH = 88
MODULES = sorted((ROOT / "diffuse_utils").glob("*.py"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# PENDING: notebooks whose code cells are not formatted to MAX_WIDTH yet, so the
# notebook test skips them. Every notebook is formatted now: keep this set EMPTY.
PENDING: set[str] = set()


def width(line: str) -> int:
    """Columns a line takes: wide (e.g. CJK) characters count two, as in ruff."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def too_wide(lines, where: str) -> list[str]:
    """``where:line:width`` for each line of ``lines`` wider than MAX_WIDTH."""
    return [
        f"{where}:{number}:{width(line)}"
        for number, line in enumerate(lines, 1)
        if width(line) > MAX_WIDTH
    ]


def test_package_lines_fit_the_width():
    assert MODULES, "no modules found"
    offenders = []
    for path in MODULES:
        lines = path.read_text(encoding="utf-8").splitlines()
        offenders += too_wide(lines, str(path.relative_to(ROOT)))
    assert not offenders, (
        f"{len(offenders)} lines over {MAX_WIDTH} columns (file:line:width; run "
        "`ruff format`, then wrap docstrings, comments and strings by hand):\n"
        + "\n".join(offenders)
    )


def test_notebook_code_cells_fit_the_width():
    names = {path.name for path in NOTEBOOKS}
    assert PENDING <= names, (
        f"PENDING names missing notebooks: {sorted(PENDING - names)}"
    )
    offenders = []
    for path in NOTEBOOKS:
        if path.name in PENDING:
            continue
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = [cell for cell in cells if cell["cell_type"] == "code"]
        for index, cell in enumerate(code):
            source = cell["source"]
            text = "".join(source) if isinstance(source, list) else source
            offenders += too_wide(text.splitlines(), f"{path.name}[code cell {index}]")
    assert not offenders, (
        f"{len(offenders)} code-cell lines over {MAX_WIDTH} columns "
        "(notebook[cell]:line:width):\n" + "\n".join(offenders)
    )
