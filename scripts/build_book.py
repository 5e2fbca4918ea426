"""Build the Jupyter Book from the executed notebooks (never from the clean sources).

    python scripts/build_book.py --executed _build/executed

Copies ``_config.yml``, ``_toc.yml``, ``references.bib``, ``book/`` and the
executed notebooks into ``_build/src`` and runs ``jb build`` there with warnings
as errors. The site lands in ``_build/html``. The cell papermill injects (tagged
``injected-parameters``) is tagged ``remove-cell`` on the way: the page shows the
notebook's own parameters cell, with its comments, once.
"""
import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


MATHJAX = ROOT / ".venv" / "mathjax" / "node_modules" / "mathjax" / "es5" / "tex-svg-full.js"


def use_local_mathjax(source: Path) -> None:
    """Serve MathJax from the site itself (installed by setup.sh with npm), so math renders offline."""
    if not MATHJAX.exists():
        print(f"note: {MATHJAX} not found; the book will load MathJax from its CDN")
        return
    (source / "_static" / "mathjax").mkdir(parents=True, exist_ok=True)
    shutil.copy(MATHJAX, source / "_static" / "mathjax" / MATHJAX.name)
    config = yaml.safe_load((source / "_config.yml").read_text())
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx.update({"html_static_path": ["_static"], "mathjax_path": f"mathjax/{MATHJAX.name}"})
    (source / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def hide_injected_parameters(notebook: dict) -> dict:
    """``notebook`` (executed, as JSON) with papermill's injected-parameters cell tagged ``remove-cell``."""
    for cell in notebook["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            cell["metadata"]["tags"] = tags + ["remove-cell"]
    return notebook


def stage(executed: Path, source: Path) -> None:
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "book", source / "book")
    shutil.copytree(ROOT / "_static", source / "_static")  # the book's CSS (Jupyter Book adds it)
    (source / "notebooks").mkdir()
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        ran = executed / notebook.name
        if not ran.exists():
            sys.exit(f"{ran} is missing: run scripts/run_notebooks.py first")
        staged = hide_injected_parameters(json.loads(ran.read_text()))
        (source / "notebooks" / notebook.name).write_text(json.dumps(staged, indent=1, ensure_ascii=False) + "\n")
    use_local_mathjax(source)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executed", type=Path, default=ROOT / "_build" / "executed")
    args = parser.parse_args()
    source, site = ROOT / "_build" / "src", ROOT / "_build" / "html"
    stage(args.executed, source)
    jb = Path(sys.executable).with_name("jb")
    result = subprocess.run([str(jb), "build", str(source), "-W", "-n", "--keep-going"])
    if result.returncode != 0:
        return result.returncode
    if site.exists():
        shutil.rmtree(site)
    shutil.copytree(source / "_build" / "html", site)
    print(f"book: {site / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
