import pytest
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


def test_show_source_is_the_packages_own_code_in_a_python_fence():
    import inspect
    from diffuse_utils.tries import Trie
    from diffuse_utils.report import show_source
    from diffuse_utils.tuning import distribution_matching_loss
    for obj, def_line in ((distribution_matching_loss, "def distribution_matching_loss("),
                          (Trie.add, "    def add(self, sequence")):
        text = show_source(obj).data
        opening, _, rest = text.partition("\n")
        body, _, closing = rest.rpartition("\n")
        assert opening == "```python" and closing == "```"
        assert body + "\n" == inspect.getsource(obj)
        assert body.splitlines()[0].startswith(def_line)


def test_show_source_fence_outlasts_backticks_in_the_source():
    from diffuse_utils.report import show_source
    text = show_source(show_source).data   # its docstring holds a run of four backticks
    assert text.startswith("`````python\n") and text.endswith("\n`````")


def test_findings_fill_a_dedented_template_as_markdown():
    from IPython.display import Markdown

    from diffuse_utils.report import findings

    shown = findings(
        """
        - entropy {h:.2f} nats, {n} runs
          {verdict}
        """,
        h=np.float64(2.2957),
        n=3,
        verdict="No run qualifies.",
    )
    assert isinstance(shown, Markdown)
    assert shown.data == "- entropy 2.30 nats, 3 runs\n  No run qualifies."


def test_findings_fill_glue_roles_from_what_was_glued_and_keep_other_braces():
    from diffuse_utils import report

    report.glue("entropy_gain", np.float64(0.4567))
    report.glue("share", 0.256)
    shown = report.findings(
        r"""
        The answer {Name} gains {glue:text}`entropy_gain:.2f` nats ($\gamma$ = {g}),
        and {glue:text}`share:.0%` of {7} are outside; `{x}` stays.
        """,
        g=0.2,
    )
    assert shown.data == (
        "The answer {Name} gains 0.46 nats ($\\gamma$ = 0.2),\n"
        "and 26% of {7} are outside; `{x}` stays."
    )
    with pytest.raises(KeyError, match="no value glued as 'missing'"):
        report.findings("{glue:text}`missing`")
    report.glue("coverage_first_name_Tuned-ID", 41)   # chapter 5 names its models this way
    assert report.findings("covers {glue:text}`coverage_first_name_Tuned-ID` names").data == (
        "covers 41 names")


def test_timed_records_the_blocks_seconds_even_when_it_fails(monkeypatch):
    from diffuse_utils import report

    clock = iter([10.0, 12.5, 20.0, 21.0])
    monkeypatch.setattr(report.time, "perf_counter", lambda: next(clock))
    timings = {}
    with report.timed(timings, "tune ID"):
        pass
    with pytest.raises(RuntimeError), report.timed(timings, "evaluate ID"):
        raise RuntimeError("sampling failed")
    assert timings == {"tune ID": 2.5, "evaluate ID": 1.0}
