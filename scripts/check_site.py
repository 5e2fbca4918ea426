"""Check the built book in a real headless browser (Debian's chromium, driven by Playwright).

    python scripts/check_site.py [_build/html]

For every page of ``_toc.yml``: it loads, has a title, renders its math (MathJax, no
TeX errors), shows no Python traceback or error output; every notebook chapter has at
least one figure with a non-zero rendered size; every table-of-contents link resolves.
Exits 1 and lists the problems otherwise.
"""
import functools
import http.server
import sys
import threading
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


def check_page(page, url: str, is_chapter: bool) -> list[str]:
    """Problems found on one page (empty when it is fine)."""
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
    if is_chapter and page.eval_on_selector_all("main img", RENDERED_IMAGES) == 0:
        problems.append(f"{url}: no figure with a non-zero rendered size")
    return problems


def check_links(page, base: str) -> list[str]:
    """Every internal link of the navigation must answer 200."""
    page.goto(base + toc_pages()[0], wait_until="load")
    links = set(page.eval_on_selector_all("nav.bd-docs-nav a", "els => els.map(e => e.href.split('#')[0])"))
    return [f"TOC link {link}: HTTP {status}" for link in sorted(links) if link.startswith(base)
            and (status := page.request.get(link).status) != 200] + ([] if links else ["no TOC links found"])


def main() -> int:
    site = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build" / "html"
    server, base = serve(site)
    problems = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        for path in toc_pages():
            found = check_page(page, base + path, is_chapter=path.startswith("notebooks/"))
            print(f"{'ok  ' if not found else 'FAIL'} {path}")
            problems += found
        problems += check_links(page, base)
        browser.close()
    server.shutdown()
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"site check: {len(toc_pages())} pages, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
