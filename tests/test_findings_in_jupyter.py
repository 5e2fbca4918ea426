"""A reader in Jupyter or Colab sees each chapter's findings with their numbers: the
"What we saw" cell's output, executed with plain nbclient (no papermill, no book build)."""
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _findings_cells(notebook: dict) -> list[int]:
    return [i for i, cell in enumerate(notebook["cells"])
            if cell["cell_type"] == "code" and re.search(r"\bfindings\(", "".join(cell["source"]))]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_writes_its_findings_in_a_cell_jupyter_shows(path):
    notebook = json.loads(path.read_text())
    cells = _findings_cells(notebook)
    assert len(cells) == 1, f"{path.name}: one findings cell, after its 'What we saw' heading"
    cell = notebook["cells"][cells[0]]
    assert "remove-input" in cell["metadata"].get("tags", [])     # the book shows its output only
    heading = "".join(notebook["cells"][cells[0] - 1]["source"])
    assert heading.startswith("## What we saw")


@pytest.mark.embedded
def test_a_chapter_run_with_plain_nbclient_shows_its_findings_without_glue_roles():
    notebook = nbformat.read(ROOT / "notebooks" / "02_kl_equivalence.ipynb", as_version=4)
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    parameters.source += "\nfit_steps = 600  # small, as CI\n"
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    cell = notebook.cells[_findings_cells(notebook)[0]]
    shown = "".join(o.get("data", {}).get("text/markdown", "") for o in cell.outputs)
    assert shown and "{glue:" not in shown
    assert re.search(r"\d\.\d", shown)        # the numbers, filled in
