"""Flag typed verdicts in the book's prose: sentences that state a direction, a frequency or a
judgement in words that no computation wrote.

    python scripts/check_prose.py                      # the whole book (less PENDING), README.md included
    python scripts/check_prose.py notebooks/04_leave_one_out.ipynb book/results.md

The book's rule (STYLE.md, 9) is that numbers in prose come from the computation (myst-nb ``glue``).
A verdict word sitting beside a glued number ("only {glue:text}`rate` of ...", "it backfired") is
typed all the same: the next build can change the number and leave the word false. This check reads
the markdown cells of notebooks, ``book/*.md`` and README.md, splits them into sentences (headings,
list items and table cells are units of their own; code, math, citations and glue roles are masked
first) and flags every sentence holding a word of :data:`VERDICT_WORDS`, a comparison stated as a
place ("is above its earlier versions'") or a hedged typed quantity ("about 210", "~210"), unless

- the word is glued: the glue role's text is masked, so ``{glue:text}`rng_vs_paper``` is never read;
- it sits in a phrase of :data:`NEUTRAL_PHRASES` ("most frequent" names a ranking, not a verdict);
- the sentence is in ``scripts/prose_allowlist.yaml``, a short list of sentences as the check prints
  them (or a part of one; an entry covers every sentence holding it), each with its reason.

``flag_sentences("the model rarely answers.")`` gives one :class:`Flag` whose ``words`` are
``("rarely",)``. Exits 1 when anything is flagged (each printed with its file, cell and words), or
when an allowlist entry no longer matches any sentence, 0 otherwise.
"""
from __future__ import annotations

import argparse
import ast
import itertools
import json
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ALLOWLIST = ROOT / "scripts" / "prose_allowlist.yaml"

# Notebooks left out of the whole-book check while someone else rewrites them; remove the entry
# when the rewrite lands, and the check covers that chapter again.
PENDING: dict[str, str] = {}

# Frequency, degree and verdict words, comparatives, and words that attribute a remainder ("the
# rest of the fall is format"): each states a direction, a judgement or a cause.
VERDICT_WORDS = frozenset("""
    most mostly few fewer only rarely seldom never always often usually nearly almost barely hardly
    far much largely mainly several majority significantly substantially clearly vastly
    more less faster slower better worse close closer higher lower larger smaller
    approach approaches approaching rest remaining
    backfired backfires spreads reproduced reproduces matches confirms confirmed fails noise
""".split())

# "its peak memory is above its earlier versions'": a comparison stated as a place.
COMPARED = re.compile(
    r"\b(?:is|are|was|were|stays?|remains?)\s+(?:well\s+|far\s+|just\s+)?(?:above|below)\b")

# Phrases whose verdict word is part of a definition or of ordinary syntax, not a finding ("the OOD
# run that never saw the family" states the design; "how much of ... is format" asks).
NEUTRAL_PHRASES = (
    "most frequent", "most often", "most likely", "at most", "so far", "how far", "how much",
    "how often", "only when", "only if", "only then", "never saw", "never seen", "never tuned",
    "lower bound", "upper bound",
)

# "about 210", "~210", "about a minute": a typed quantity, hedged (a glued one is masked first).
APPROXIMATE = re.compile(
    r"(?:\b(?:about|around|roughly|approximately)\s+|~\s*)"
    r"(?:\d[\d.,]*|(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|twenty|fifty|hundred|thousand)"
    r"\b(?:\s+(?:minute|second|hour|hundred|thousand|half|third|quarter|dozen)s?)?)",
    re.IGNORECASE)

ABBREVIATIONS = ("e.g.", "i.e.", "vs.", "et al.", "Eq.", "Fig.", "No.", "etc.", "cf.")

_MASKS = (                                            # (kind, pattern) masked before splitting, in order
    ("glue", re.compile(r"(?<![`\w])\{glue(?::[a-z]*)?\}`[^`]*`")),
    ("role", re.compile(r"(?<![`\w])\{[a-z]+(?::[a-z]+)?\}`[^`]*`")),    # {cite}`...`, {cite:t}`...`
    ("code", re.compile(r"(`+)(?:(?!\1).)+\1")),
    ("math", re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.DOTALL)),
    ("link", re.compile(r"!?\[[^\]]*\]\([^)]*\)|<https?://[^>]+>")),
)
_QUOTE = re.compile(r'"[^"\n]*"|\u201c[^\u201d]*\u201d')      # a quotation's full stops end no sentence
_HOLE = re.compile("\ue000(\\d+)\ue001")
_SENTENCE_END = re.compile(r"[.!?](?:\*\*|\*|[\"')\]])*(?=\s+[\"'*(\[`\ue000A-Z0-9])")


@dataclass(frozen=True)
class Flag:
    """A flagged sentence: where it is, its text (markdown, whitespace collapsed) and why."""
    where: str
    sentence: str
    words: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.where}: [{', '.join(self.words)}] {self.sentence}"


def _mask(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``text`` with code, math, roles and links replaced by numbered holes; the holes' (kind, text)."""
    holes: list[tuple[str, str]] = []

    def hole(kind: str, match: re.Match) -> str:
        holes.append((kind, match.group(0)))
        return f"\ue000{len(holes) - 1}\ue001"

    for kind, pattern in _MASKS:
        text = pattern.sub(lambda m, kind=kind: hole(kind, m), text)
    return text, holes


def _units(markdown: str) -> list[str]:
    """Headings, paragraphs, list items and table cells of ``markdown``, each one string; fenced
    code and directives are dropped."""
    markdown = re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", markdown, flags=re.DOTALL | re.MULTILINE)
    markdown = re.sub(r"<!--.*?-->", "", markdown, flags=re.DOTALL)
    units: list[list[str]] = []
    fresh = True
    for line in markdown.splitlines():
        stripped = line.strip()
        if not stripped:
            fresh = True
        elif stripped.startswith("|"):
            if not re.fullmatch(r"[|:\-\s]+", stripped):
                units.extend([cell] for cell in re.split(r"(?<!\\)\|", stripped.strip("|")) if cell.strip())
            fresh = True
        elif re.match(r"#{1,6}\s|([-*+]|\d+[.)])\s", stripped) or fresh:
            units.append([re.sub(r"^(#{1,6}|[-*+]|\d+[.)])\s+", "", stripped)])
            fresh = bool(re.match(r"#{1,6}\s", stripped))
        else:
            units[-1].append(stripped)
    return [" ".join(unit) for unit in units]


def sentences(markdown: str) -> list[tuple[str, str]]:
    """The sentences of ``markdown``, each as (markdown text, text to read): in the second, code,
    math, citations and glue roles are holes and links keep their words only."""
    found = []
    for unit in _units(markdown):
        masked, holes = _mask(unit)
        for abbreviation in ABBREVIATIONS:
            masked = masked.replace(abbreviation, abbreviation.replace(".", "\ue002"))
        masked = _QUOTE.sub(lambda m: re.sub(r"\.(?=\s)", "\ue002", m.group(0)), masked)
        cuts = [0] + [m.end() for m in _SENTENCE_END.finditer(masked)] + [len(masked)]
        for start, end in itertools.pairwise(cuts):
            part = masked[start:end].replace("\ue002", ".").strip()
            if part:
                found.append((_fill(part, holes, lambda kind, text: text), _fill(part, holes, _readable)))
    return found


def _fill(part: str, holes: list[tuple[str, str]], fill) -> str:
    """``part`` with each hole replaced by ``fill(kind, text)``, whitespace collapsed."""
    return re.sub(r"\s+", " ", _HOLE.sub(lambda m: fill(*holes[int(m.group(1))]), part))


def _readable(kind: str, text: str) -> str:
    """What the word check reads in place of a hole: a link's words, nothing else's."""
    if kind == "link" and not text.startswith(("!", "<")):
        return text[1:text.index("](")]
    return f" {kind.upper()} "


def verdict_words(read: str) -> tuple[str, ...]:
    """The verdict words and hedged typed quantities in a sentence's readable text."""
    lowered = read.lower()
    for phrase in NEUTRAL_PHRASES:
        lowered = re.sub(rf"\b{re.escape(phrase)}s?\b", " ", lowered)
    words = [w for w in re.findall(r"[a-z]+", lowered) if w in VERDICT_WORDS]
    words += [m.group(0).strip() for pattern in (APPROXIMATE, COMPARED) for m in pattern.finditer(lowered)]
    return tuple(dict.fromkeys(words))


def load_allowlist(path: Path = ALLOWLIST) -> list[dict]:
    """The allowlist's entries: each a ``text`` (a sentence, or a part of one) and a ``reason``."""
    entries = (yaml.safe_load(path.read_text()) or []) if path.exists() else []
    for entry in entries:
        if not (isinstance(entry, dict) and entry.get("text") and entry.get("reason")):
            raise ValueError(f"{path}: every entry needs a text and a reason, not {entry!r}")
    return entries


def flag_sentences(markdown: str, where: str = "", allowlist: list[dict] = (),
                   used: set[int] | None = None) -> list[Flag]:
    """Every sentence of ``markdown`` holding a typed verdict word, less those in ``allowlist``
    (whose indices, when matched, are added to ``used``)."""
    flags = []
    for shown, read in sentences(markdown):
        words = verdict_words(read)
        if not words:
            continue
        allowed = [i for i, entry in enumerate(allowlist) if entry["text"] in shown]
        if allowed:
            if used is not None:
                used.update(allowed)
            continue
        flags.append(Flag(where, shown, words))
    return flags


def findings_templates(source: str) -> list[str]:
    """The templates of a code cell's ``findings(...)`` calls (``report.findings``: a
    chapter's findings as Markdown, readable in Jupyter): prose like a markdown cell's."""
    try:
        tree = ast.parse("\n".join(line for line in source.splitlines()
                                   if not line.lstrip().startswith(("%", "!"))))
    except SyntaxError:
        return []
    return [textwrap.dedent(node.args[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", ""))
            == "findings" and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)]


def markdown_units(path: Path) -> list[tuple[str, str]]:
    """(where, markdown) of a file: each markdown cell and findings template of a notebook,
    or the whole of a .md file."""
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        units = []
        for i, cell in enumerate(cells):
            source = "".join(cell["source"])
            if cell["cell_type"] == "markdown":
                units.append((f"{name} cell {i}", source))
            elif "findings(" in source:
                units += [(f"{name} cell {i} (findings)", t) for t in findings_templates(source)]
        return units
    return [(str(name), path.read_text(encoding="utf-8"))]


def book_paths(root: Path = ROOT) -> list[Path]:
    """The prose the check covers: notebooks (less :data:`PENDING`), ``book/*.md`` and README.md."""
    notebooks = [p for p in sorted((root / "notebooks").glob("*.ipynb")) if p.name not in PENDING]
    return notebooks + sorted((root / "book").glob("*.md")) + [root / "README.md"]


def check(paths: list[Path], allowlist: list[dict]) -> tuple[list[Flag], list[dict]]:
    """Flags over ``paths``, and the allowlist entries that matched no sentence there."""
    used: set[int] = set()
    flags = [flag for path in paths for where, text in markdown_units(path)
             for flag in flag_sentences(text, where, allowlist, used)]
    return flags, [entry for i, entry in enumerate(allowlist) if i not in used]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks or .md files (default: the book)")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.paths] or book_paths()
    flags, unused = check(paths, load_allowlist())
    for flag in flags:
        print(flag)
    if not args.paths:
        for entry in unused:
            print(f"allowlist entry matches no sentence: {entry['text']!r}")
    print(f"{len(flags)} sentence(s) flagged in {len(paths)} file(s)", file=sys.stderr)
    return 1 if flags or (unused and not args.paths) else 0


if __name__ == "__main__":
    sys.exit(main())
