"""Check the built book in a real headless browser (Debian's chromium, driven by Playwright).

    python scripts/check_site.py [_build/html]

For every page of ``_toc.yml``: it loads, has a title, renders its math (MathJax, no
TeX errors), shows no Python traceback or error output, and no unresolved glue (raw
``{glue:...}`` text or a left-over error node). Every notebook chapter has at least one
figure with a non-zero rendered size, its "What we saw" section, and launch buttons
(Colab) and a repository button pointing at ``_config.yml``'s ``repository``; each widget
of ``WIDGET_FALLBACKS`` shows its static figure or table. Every table-of-contents link
resolves. One full-page screenshot per chapter goes to ``_build/screenshots/`` (next to
the site) for a person to look at. Exits 1 and lists the problems otherwise.

The page as a reader reads it (STYLE.md, "Pages as readers see them"), on every page:

- ``[overflow]``: a code block, table or figure wider than its box (its scrollWidth past its own
  clientWidth, or past the column or scrolling box that holds it), with the widths in pixels, the
  code inside hide-input toggles included;
- ``[glue on page]``: a code cell on the page (shown, or behind a hide-input toggle) that calls ``glue(``;
- ``[warning]``: a cell output holding a Python warning (``...Warning:`` or ``warnings.warn(``);
- ``[numbered twice]``: a heading with a typed number after Jupyter Book's own ("7.5. 5. Defaults").

Pages listed in ``PENDING_REWRITE`` report their glue and heading problems as pending, not as failures.
"""
import functools
import http.server
import re
import sys
import threading
from collections import Counter
from pathlib import Path

import yaml
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RENDERED_IMAGES = """els => els.filter(e => e.complete && e.naturalWidth > 0
                                     && e.getBoundingClientRect().width > 0).length"""
WAIT_FOR_MATH = "() => (window.MathJax && MathJax.startup) ? MathJax.startup.promise.then(() => true) : true"
SUMMARY = "What we saw"   # every chapter ends with a section whose heading holds this (STYLE.md, rule 2)
# A widget's static fallback, one line per widget: the chapter, and a piece of the code (or text output)
# of the cell that draws the figure or table the rendered book shows in place of the live widget.
WIDGET_FALLBACKS = [
    ("notebooks/01_measuring_bias", "show_samples()"),
    ("notebooks/03_lora_tuning", 'curve = terms(names_history, "babynames")'),   # the curves; slider: tuning_stepper
    ("notebooks/05_synthetic_biographies", "pd.DataFrame(examples)"),           # browser: biography_browser
    ("notebooks/06_is_tuning_worth_it", "answer_table(comparison"),             # browser: answer_browser
]
# Text of main without code blocks (a chapter may show glue's syntax in code, never in prose).
PROSE_TEXT = """main => { const copy = main.cloneNode(true);
                        copy.querySelectorAll('pre, code').forEach(e => e.remove()); return copy.textContent; }"""
REPOSITORY_ADDRESS = re.compile(r"(?:github\.com|colab\.research\.google\.com/github)/([\w.-]+)/([\w.-]+)")
# PENDING: chapters being rewritten, whose glue cells and typed heading numbers go with the rewrite; their
# problems of those two kinds are listed as pending, not failures. Remove the entry when the rewrite lands.
PENDING_REWRITE: dict[str, tuple[str, ...]] = {}
# Overflows of these element kinds are listed as pending, not failures, until the fix named here lands
# (an entry reads {"table": "why, and the issue that fixes it"}). Issue 30 fitted every result table to
# the column: keep this EMPTY.
PENDING_OVERFLOW: dict[str, str] = {}
NUMBERED_TWICE = re.compile(r"^\d+(\.\d+)*\.\s+\d+(\.\d+)*\.\s")   # Jupyter Book's "7.5. " then a typed "5. "
PYTHON_WARNING = re.compile(r"\b\w*Warning: |warnings\.warn\(")
# Every code block, table and figure wider than its box, with the code behind hide-input toggles opened.
OVERFLOWS = """main => {
  const closed = [...main.querySelectorAll('details:not([open])')];
  closed.forEach(d => d.open = true);
  const kind = el => el.matches('pre') ? (el.closest('.cell_input') ? 'code cell' : el.closest('.cell_output')
      ? 'output text' : 'code block') : el.matches('table') ? 'table' : 'figure';
  const box = el => { for (let a = el.parentElement; a && a !== main; a = a.parentElement) {
      if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(a).overflowX) || a.matches('article')) return a; }
    return main; };
  const label = el => (el.matches('img') ? el.getAttribute('alt') || el.getAttribute('src')
      : el.matches('table') ? [...el.querySelectorAll('th')].map(t => t.textContent.trim()).join(' | ')
      : el.textContent.trim().split('\\n')[0]).slice(0, 70);
  const found = [...main.querySelectorAll('pre, table, img, figure')].flatMap(el => {
    if (!el.getClientRects().length || el.parentElement.closest('table, pre')) return [];
    const b = box(el), style = getComputedStyle(b);
    const inner = b.getBoundingClientRect().right - parseFloat(style.borderRightWidth) - parseFloat(style.paddingRight);
    const past = Math.max(el.scrollWidth - el.clientWidth, el.getBoundingClientRect().right - inner);
    return past > 1 ? [{kind: kind(el), label: label(el), width: el.scrollWidth,
                        box: el.matches('pre') ? el.clientWidth : Math.round(el.scrollWidth - past),
                        chars: el.matches('pre') ? Math.max(...el.textContent.split('\\n').map(l => l.length)) : 0}] : [];
  });
  closed.forEach(d => d.open = false);
  return found; }"""
GLUE_CELLS = """cells => cells.filter(c => c.textContent.includes('glue(')).map(c => c.textContent.trim().split('\\n')[0].slice(0, 70))"""
# A reader's screen: from 1440 px wide the article column has its full width (786 px: 89 columns of
# 14 px code, room for STYLE.md's 88); at 1280 it holds 77.
VIEWPORT = {"width": 1440, "height": 900}
HEADER_BUTTONS = ".bd-header-article a[href]"   # sphinx-book-theme's launch, repository and download buttons
FALLBACK_OUTPUTS = """(cells, snippet) => cells.filter(c => c.textContent.includes(snippet)).map(c =>
    [...c.querySelectorAll('.cell_output img')].filter(e => e.complete && e.naturalWidth > 0
        && e.getBoundingClientRect().width > 0).length + c.querySelectorAll('.cell_output table').length)"""


def repository() -> tuple[str, str]:
    """``(url, branch)`` of ``_config.yml``'s ``repository`` block."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    return config["url"].rstrip("/"), config.get("branch", "main")


def toc_pages() -> list[str]:
    """Pages in ``_toc.yml`` order, as paths relative to the site root (``notebooks/01_x.html``)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    return [f"{f}.html" for f in files]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder: Path):
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def check_page(page, url: str, path: str) -> list[str]:
    """Problems found on one page (empty when it is fine); a notebook chapter gets ``check_chapter`` too."""
    response = page.goto(url, wait_until="load")
    if response is None or response.status != 200:
        return [f"{url}: HTTP {response.status if response else 'no response'}"]
    page.evaluate(WAIT_FOR_MATH)
    problems = []
    title = page.locator("main h1").first
    if not title.count() or not title.inner_text().strip():
        problems.append(f"{url}: no title (h1)")
    text = page.locator("main").inner_text()
    if "Traceback (most recent call last)" in text or page.locator("main .output.traceback, main .output.error").count():
        problems.append(f"{url}: shows a Python traceback or error output")
    math = page.locator("main .math").count()
    if math and page.locator("main mjx-container").count() == 0:
        problems.append(f"{url}: {math} math elements but none rendered by MathJax")
    if page.locator("main mjx-merror, main .MathJax_Error").count():
        problems.append(f"{url}: MathJax reports a TeX error")
    problems += check_glue(page, url) + check_reading(page, url)
    return problems + check_chapter(page, url, path) if path.startswith("notebooks/") else problems


def check_glue(page, url: str) -> list[str]:
    """No glue left unresolved: raw ``{glue:...}`` text in prose, or the error node Sphinx leaves."""
    raw = sorted(set(re.findall(r"\{glue(?::\w+)?\}\S*", page.eval_on_selector("main", PROSE_TEXT))))
    problems = [f"{url}: unresolved glue {raw[:3]}"] if raw else []
    if page.locator("main .system-message, main .problematic").count():
        problems.append(f"{url}: shows an unresolved reference or glue (a system-message or problematic node)")
    return problems


def check_reading(page, url: str) -> list[str]:
    """The page as a reader reads it: nothing wider than its box, no glue call in a code cell, no Python
    warning in an output, no heading numbered twice. Each problem starts with its kind in brackets."""
    problems = [f"{url}: [overflow] {o['kind']} '{o['label']}' is {o['width']} px wide in a box of {o['box']} px"
                + (f" (longest line {o['chars']} characters)" if o["chars"] else "")
                for o in page.eval_on_selector("main", OVERFLOWS)]
    problems += [f"{url}: [glue on page] a code cell calls glue(: {first!r}"
                 for first in page.eval_on_selector_all("main .cell_input", GLUE_CELLS)]
    problems += [f"{url}: [warning] an output shows a Python warning: {match.group(0).strip()!r} in "
                 f"{text.strip()[max(0, match.start() - 60):match.end() + 40]!r}"
                 for text in page.locator("main .cell_output").all_inner_texts()
                 if (match := PYTHON_WARNING.search(text))]
    problems += [f"{url}: [numbered twice] heading {heading.strip()!r}"
                 for heading in page.locator("main h1, main h2, main h3, main h4").all_inner_texts()
                 if NUMBERED_TWICE.match(heading.strip())]
    return problems


def kind(problem: str) -> str:
    """A problem's kind: the bracketed word after the page's address, or 'other'."""
    found = re.search(r": \[([a-z ]+)\]", problem)
    return found.group(1) if found else "other"


def pending(problem: str) -> bool:
    """A problem of a kind that ``PENDING_REWRITE`` lets wait on its page, or an overflow of an
    element kind in ``PENDING_OVERFLOW``."""
    address = problem.split(": [")[0]
    if kind(problem) == "overflow" and any(f"[overflow] {element} " in problem for element in PENDING_OVERFLOW):
        return True
    return any(address.endswith(page) and kind(problem) in kinds for page, kinds in PENDING_REWRITE.items())


def check_chapter(page, url: str, path: str) -> list[str]:
    """A notebook chapter's figure, summary section, launch buttons and widget fallbacks."""
    problems = []
    if page.eval_on_selector_all("main img", RENDERED_IMAGES) == 0:
        problems.append(f"{url}: no figure with a non-zero rendered size")
    if not any(SUMMARY in heading for heading in page.locator("main h2").all_inner_texts()):
        problems.append(f"{url}: no '{SUMMARY}' section (a level-2 heading) at the end of the chapter")
    for chapter, snippet in WIDGET_FALLBACKS:
        if f"{chapter}.html" == path and not any(page.eval_on_selector_all("main div.cell", FALLBACK_OUTPUTS, snippet)):
            problems.append(f"{url}: the static fallback of the widget drawn by {snippet!r} is missing "
                            "(no cell with that code shows a figure or a table)")
    return problems + check_buttons(page, url, path)


def check_buttons(page, url: str, path: str) -> list[str]:
    """The Colab launch button opens this chapter's notebook in the configured repository and branch,
    and every link to a repository in the page's header buttons goes to that repository."""
    repo_url, branch = repository()
    owner_repo = repo_url.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{path.removesuffix('.html')}.ipynb"
    links = page.eval_on_selector_all(HEADER_BUTTONS, "els => els.map(e => e.href)")
    problems = [] if colab in links else [f"{url}: no Colab launch button to {colab} (found {links})"]
    stray = [link for link in links if any(f"{o}/{n}" != owner_repo for o, n in REPOSITORY_ADDRESS.findall(link))]
    if repo_url not in links:
        problems.append(f"{url}: no repository button to {repo_url}")
    return problems + [f"{url}: header button points at another repository: {link}" for link in stray]


def check_links(page, base: str) -> list[str]:
    """Every internal link of the navigation must answer 200."""
    page.goto(base + toc_pages()[0], wait_until="load")
    links = set(page.eval_on_selector_all("nav.bd-docs-nav a", "els => els.map(e => e.href.split('#')[0])"))
    return [f"TOC link {link}: HTTP {status}" for link in sorted(links) if link.startswith(base)
            and (status := page.request.get(link).status) != 200] + ([] if links else ["no TOC links found"])


def main() -> int:
    site = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build" / "html"
    screenshots = site.resolve().parent / "screenshots"
    screenshots.mkdir(exist_ok=True)
    server, base = serve(site)
    problems = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport=VIEWPORT)
        for path in toc_pages():
            found = check_page(page, base + path, path)
            if path.startswith("notebooks/"):
                page.screenshot(path=str(screenshots / f"{Path(path).stem}.png"), full_page=True)
            print(f"{'ok  ' if not found else 'FAIL'} {path}")
            problems += found
        problems += check_links(page, base)
        problems += [f"WIDGET_FALLBACKS names {chapter}, which is not a page of _toc.yml"
                     for chapter, _ in WIDGET_FALLBACKS if f"{chapter}.html" not in toc_pages()]
        browser.close()
    server.shutdown()
    waiting = [p for p in problems if pending(p)]
    problems = [p for p in problems if not pending(p)]
    for problem in problems:
        print(problem, file=sys.stderr)
    for problem in waiting:
        print(f"pending (PENDING_REWRITE, PENDING_OVERFLOW): {problem}", file=sys.stderr)
    counts = Counter(kind(p) for p in problems)
    print(f"site check: {len(toc_pages())} pages, {len(problems)} problems"
          + (f" ({', '.join(f'{k} {n}' for k, n in sorted(counts.items()))})" if problems else "")
          + (f"; {len(waiting)} pending (PENDING_REWRITE, PENDING_OVERFLOW)" if waiting else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
