"""Point every notebook's Colab set-up cell at the repository named in ``_config.yml``.

    python scripts/set_repository.py          # after changing repository.url / repository.branch

``_config.yml``'s ``repository`` block is the one setting: the book's launch buttons (each page's
Colab button) read it at build time, and this script writes it into the places a notebook needs it
before any build (the ``git+URL@BRANCH`` the set-up cell installs, in its ``pip install`` line or in
the ``repo = "git+URL@BRANCH"`` that line names as ``{repo}``, chapter 90's ``git clone``, and any
Colab link to a notebook in the text; the notebooks carry no badge, the launch button is the page's one).
It edits the notebooks' JSON text in place, touching nothing else; ``tests/test_repository.py``
fails while any notebook names another address.
"""
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
NAME = r"[\w.-]+"
COLAB_LINK = re.compile(rf"https://colab\.research\.google\.com/github/{NAME}/{NAME}/blob/{NAME}/")
INSTALL = re.compile(rf"git\+https://github\.com/{NAME}/{NAME}(?:@{NAME})?")
CLONE = re.compile(rf"git clone (-q --depth 1 )(?:-b {NAME} )?https://github\.com/{NAME}/{NAME}")


def configured_repository(config_path: Path = ROOT / "_config.yml") -> tuple[str, str]:
    """``(url, branch)`` from ``_config.yml``, e.g. ``("https://github.com/diffuse-book/diffuse", "main")``."""
    repository = (yaml.safe_load(config_path.read_text()) or {}).get("repository") or {}
    url, branch = str(repository.get("url", "")).rstrip("/"), str(repository.get("branch", "main"))
    if not re.fullmatch(rf"https://github\.com/{NAME}/{NAME}", url):
        raise SystemExit(f"{config_path}: repository.url must be https://github.com/OWNER/NAME, got {url!r}")
    return url, branch


def retarget(text: str, url: str, branch: str) -> str:
    """Notebook JSON ``text`` with its Colab link, install and clone addresses pointed at ``url``@``branch``.

    Example: ``retarget('git+https://github.com/a/b"', "https://github.com/c/d", "dev")`` ->
    ``'git+https://github.com/c/d@dev"'``. Applying it twice changes nothing more.
    """
    owner_repo = url.removeprefix("https://github.com/")
    text = COLAB_LINK.sub(f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/", text)
    text = INSTALL.sub(f"git+{url}@{branch}", text)
    return CLONE.sub(lambda m: f"git clone {m.group(1)}-b {branch} {url}", text)


def main() -> int:
    url, branch = configured_repository()
    changed = []
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        text = notebook.read_text()
        new = retarget(text, url, branch)
        if new != text:
            notebook.write_text(new)
            changed.append(notebook.name)
    print(f"{url} ({branch}): {len(changed)} notebooks updated {changed if changed else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
