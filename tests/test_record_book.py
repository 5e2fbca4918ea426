"""benchmarks/record_book.py: a book run taken in pieces is summed and marked, never read as one run."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import load_script
from diffuse_utils.benchmark_results import chapters_wall_seconds

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "record_book.py"
record_book = load_script("benchmarks/record_book.py")


def timings(chapters: dict, invocation: str | None = None, params="notebook defaults") -> dict:
    """A runner's timings.json: ``chapters`` maps stem -> (seconds, start time)."""
    run = {"params": params, "seconds": {stem: seconds for stem, (seconds, _) in chapters.items()},
           "started": {stem: start for stem, (_, start) in chapters.items()}}
    if invocation:
        run["invocation"] = dict.fromkeys(chapters, invocation)
    return run


def test_one_file_from_several_invocations_counts_its_pieces():
    run = timings({"01_a": (10.0, "2026-12-01T10:00:00"), "02_b": (5.0, "2026-12-01T10:00:10")}, "2026-12-01T10:00:00")
    run["invocation"]["02_b"] = "2026-12-01T10:00:09"
    assert record_book.combine([run])[:3] == ("notebook defaults", {"01_a": 10.0, "02_b": 5.0}, 2)
    one = timings({"01_a": (10.0, "2026-12-01T10:00:00"), "02_b": (5.0, "2026-12-01T10:00:10")}, "2026-12-01T10:00:00")
    assert record_book.combine([one])[2] == 1


def test_several_files_make_one_run_in_book_order_only():
    first = timings({"01_a": (10.0, "2026-12-01T10:00:00")}, "2026-12-01T10:00:00")
    second = timings({"02_b": (5.0, "2026-12-01T11:00:00")}, "2026-12-01T11:00:00")
    assert record_book.combine([second, first])[:3] == ("notebook defaults", {"01_a": 10.0, "02_b": 5.0}, 2)
    late = timings({"01_a": (10.0, "2026-12-01T12:00:00")}, "2026-12-01T12:00:00")
    with pytest.raises(SystemExit, match="book order"):
        record_book.combine([late, second])
    with pytest.raises(SystemExit, match="different parameters"):
        record_book.combine([first, timings({"02_b": (5.0, "2026-12-01T11:00:00")}, params="params/ci.yaml")])
    with pytest.raises(SystemExit, match="two timings files"):
        record_book.combine([first, first])


def test_a_run_in_pieces_is_recorded_with_its_number_of_pieces(tmp_path):
    paths = []
    for hour, stem in enumerate(record_book.BOOK_CHAPTERS):
        path = tmp_path / f"piece{hour}" / "timings.json"
        path.parent.mkdir()
        start = f"2026-12-01T{10 + hour:02d}:00:00"
        path.write_text(json.dumps(timings({stem: (60.0, start)}, start)))
        paths.append(str(path))
    output = tmp_path / "book_timings.json"
    subprocess.run([sys.executable, str(SCRIPT), "default book, from scratch, in pieces", *paths,
                    "--output", str(output)], check=True, capture_output=True)
    entry = json.loads(output.read_text())["default book, from scratch, in pieces"]
    assert entry["pieces"] == len(paths) and "partial" not in entry
    assert entry["chapters_total_seconds"] == 60.0 * len(paths)
    short = subprocess.run([sys.executable, str(SCRIPT), "cut short", *paths[:2], "--output", str(output)],
                           check=False, capture_output=True, text=True)
    assert short.returncode != 0 and "--partial" in short.stderr


def test_chapters_side_by_side_are_recorded_with_their_wall_time(tmp_path, monkeypatch):
    """Two at a time (run_notebooks.py --jobs 2): started out of book order, one invocation, and
    the wall time from the first start to the last end beside the sum of overlapping times."""
    starts = {"01_measuring_bias": 40, "03_lora_tuning": 0, "04_leave_one_out": 0}
    chapters = {stem: (60.0, f"2026-12-01T10:{starts.get(stem, 100) // 60:02d}:{starts.get(stem, 100) % 60:02d}")
                for stem in record_book.BOOK_CHAPTERS}
    run = timings(chapters, "2026-12-01T10:00:00", params="params/ci.yaml")
    with pytest.raises(SystemExit, match="book order"):
        record_book.combine([run])   # one at a time, 03 before 01 would have filled 01's caches
    run["jobs"] = dict.fromkeys(chapters, 2)
    (tmp_path / "timings.json").write_text(json.dumps(run))
    output = tmp_path / "book_timings.json"
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "CI", str(tmp_path / "timings.json"), "--output", str(output)])
    assert record_book.main() == 0   # in this process: a new one would spend seconds importing torch
    entry = json.loads(output.read_text())["CI"]
    assert entry["jobs"] == 2 and "pieces" not in entry
    assert entry["chapters_wall_seconds"] == 160.0   # 10:00:00 to 10:01:40 + 60 s
    later = {stem: "2026-12-01T11:00:00" for stem in record_book.BOOK_CHAPTERS[-2:]}
    run["invocation"].update(later)   # the last two chapters, a second piece an hour later
    run["started"].update(later)
    params, seconds, pieces, started, invocation = record_book.combine([run])
    wall = chapters_wall_seconds(seconds, started, invocation)
    assert pieces == 2 and wall == 160.0 + 60.0   # each piece's wall time; not the hour between
    assert entry["chapters_total_seconds"] == 60.0 * len(record_book.BOOK_CHAPTERS)
