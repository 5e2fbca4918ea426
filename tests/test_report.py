import numpy as np

from diffuse_utils.report import glue, paper_table1


def test_glue_stores_numpy_scalars_as_plain_numbers(capsys, monkeypatch):
    stored = {}
    import myst_nb
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: stored.update({name: value}))
    glue("x", np.float64(2.5))
    assert stored == {"x": 2.5} and type(stored["x"]) is float


def test_paper_table1_quotes():
    table = paper_table1().set_index(["task", "model"])
    assert table.loc[("RNG", "Llama-2-13B-chat"), "entropy_baseline"] == 1.07
    assert table.loc[("BABYNAMES", "Mistral-7B-Instruct"), "coverage_tuned"] == 479
    assert set(table["source"]) == {"paper (quoted)"}
