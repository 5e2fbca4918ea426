"""A reader in Jupyter or Colab sees each chapter's findings with their numbers: the "What we saw"
cell's output. Every chapter has one such cell; the runner checks its output after each chapter
runs (``run_notebooks.findings_problem``), so CI checks it for every chapter and for chapter 3
run in the Colab-like environment."""
import json
from pathlib import Path

import nbformat
import pytest

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
RUNNER = load_script("scripts/run_notebooks.py")   # its FINDINGS_CALL names the findings cell


def _findings_cells(notebook: dict) -> list[int]:
    return [i for i, cell in enumerate(notebook["cells"])
            if cell["cell_type"] == "code" and RUNNER.FINDINGS_CALL.search("".join(cell["source"]))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_writes_its_findings_in_a_cell_jupyter_shows(path):
    notebook = json.loads(path.read_text())
    cells = _findings_cells(notebook)
    assert len(cells) == 1, f"{path.name}: one findings cell, after its 'What we saw' heading"
    cell = notebook["cells"][cells[0]]
    assert "remove-input" in cell["metadata"].get("tags", [])     # the book shows its output only
    heading = "".join(notebook["cells"][cells[0] - 1]["source"])
    assert heading.startswith("## What we saw")


def _executed(tmp_path, source: str, outputs: list) -> Path:
    cell = nbformat.v4.new_code_cell(source, outputs=outputs)
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), cell]), path)
    return path


def _markdown(text) -> list:
    return [nbformat.v4.new_output("display_data", data={"text/markdown": text})]


@pytest.mark.parametrize("outputs, problem", [
    (_markdown("The entropy rose from 1.95 to 2.29 nats."), None),
    (_markdown(["The entropy rose ", "from 1.95 nats."]), None),          # nbformat's list form
    (_markdown("The entropy rose from {glue:text}`base_entropy:.2f` nats."), "{glue} role"),
    (_markdown("The entropy rose."), "no number"),
    ([nbformat.v4.new_output("stream", name="stdout", text="1.95")], "no Markdown output"),
    ([], "no Markdown output"),
])
def test_findings_problem_reads_the_findings_cell_as_jupyter_shows_it(tmp_path, outputs, problem):
    """CI runs this on every executed chapter (scripts/run_notebooks.py) and on chapter 3 run in the
    Colab-like environment (scripts/check_installed.py)."""
    found = RUNNER.findings_problem(
        _executed(tmp_path, 'findings("""...""", values)', outputs))
    assert found is None if problem is None else problem in found


def test_a_notebook_without_findings_has_nothing_to_check(tmp_path):
    assert RUNNER.findings_problem(_executed(tmp_path, "cost_findings(x)", [])) is None
