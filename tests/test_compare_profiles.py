"""benchmarks/compare_profiles.py: the values a chapter's verdicts rest on, in two profiles' runs."""
import json

import nbformat

from conftest import load_script

compare_profiles = load_script("benchmarks/compare_profiles.py")


def executed(folder, chapter: str, values: dict, params: str) -> None:
    """An executed chapter as myst-nb's glue leaves it: one display output per glued value."""
    prefix = "application/papermill.record/"
    outputs = [nbformat.v4.new_output("display_data", data={f"{prefix}text/plain": repr(v)},
                                      metadata={"scrapbook": {"name": n, "mime_prefix": prefix}})
               for n, v in values.items()]
    folder.mkdir(exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("glue(...)", outputs=outputs)]),
                   folder / f"{chapter}.ipynb")
    (folder / "timings.json").write_text(json.dumps({"params": params, "seconds": {chapter: 1.0}}))


def test_a_chapter_in_both_runs_is_compared_on_its_verdict_values(tmp_path, monkeypatch):
    monkeypatch.setattr(compare_profiles, "OUTPUT", tmp_path / "profile_comparison.json")
    chapter = "04_leave_one_out"
    executed(tmp_path / "d", chapter, {"passes_glue": 2, "n_samples": 40, "n_tasks": 6, "ood_wins": 5,
                                       "ood_valid_wins": 4, "id_wins": 6, "other": 1.5}, "params/default.yaml")
    executed(tmp_path / "f", chapter, {"passes_glue": 8, "n_samples": 100, "n_tasks": 6, "ood_wins": 6,
                                       "ood_valid_wins": 5, "id_wins": 5}, "params/full.yaml")
    executed(tmp_path / "d", "05_synthetic_biographies", {"n_bios": 100}, "params/default.yaml")
    found = compare_profiles.compare(tmp_path / "d", tmp_path / "f")
    assert list(found) == [chapter]                      # chapter 5 ran in one profile only
    assert found[chapter]["default"] == {"passes_glue": "2", "n_samples": "40", "n_tasks": "6",
                                         "ood_wins": "5", "ood_valid_wins": "4", "id_wins": "6"}
    assert found[chapter]["full"]["passes_glue"] == "8" and found[chapter]["full"]["id_wins"] == "5"
    monkeypatch.setattr("sys.argv", ["compare_profiles.py", str(tmp_path / "d"), str(tmp_path / "f")])
    compare_profiles.main()
    saved = json.loads((tmp_path / "profile_comparison.json").read_text())
    assert saved[chapter]["params"] == {"default": "params/default.yaml", "full": "params/full.yaml"}
    assert saved[chapter]["full"] == found[chapter]["full"]


def test_glued_strings_lose_their_quotes(tmp_path):
    executed(tmp_path / "d", "01_measuring_bias", {"top_name": "Liam", "agree_inside": 9}, "x")
    assert compare_profiles.glued(tmp_path / "d" / "01_measuring_bias.ipynb") == {"top_name": "Liam",
                                                                                   "agree_inside": "9"}
