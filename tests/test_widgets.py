import matplotlib
import numpy as np
import pandas as pd
import pytest

from diffuse_utils import widgets
from diffuse_utils.biographies import FIELDS, parse_biographies

matplotlib.use("Agg")


@pytest.fixture
def curve():
    """A measured run: updates 0, 5, 10 (as diagnostics.terms returns it)."""
    return pd.DataFrame({"update": [0, 5, 10], "L": [9.0, 6.0, 5.5], "H": [5.0, 5.0, 5.0],
                         "KL": [1.0, 0.6, 0.3], "neg_log_mass": [3.0, 0.4, 0.2], "memorization": [1.0, 0.8, 0.5]})


def test_values_at_an_update_and_between_measurements(curve):
    at_five = widgets.values_at(curve, 5)
    assert at_five.to_dict() == {"update": 5, "L - H(p*)": 1.0, "KL": 0.6, "-log M": 0.4, "memorization": 0.8}
    assert widgets.values_at(curve, 9)["update"] == 5       # the last measured update before 9
    assert widgets.values_at(curve, -1)["update"] == 0      # before the first: the first
    assert "memorization" not in widgets.values_at(curve.drop(columns="memorization"), 5)


def test_tuning_step_figure_marks_the_update_and_titles_its_values(curve):
    figure = widgets.tuning_step_figure(curve, 5)
    assert len(figure.axes) == 2
    for ax in figure.axes:
        markers = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
        assert [list(line.get_xdata()) for line in markers] == [[5, 5]]
    assert "update 5" in figure.axes[0].get_title() and "KL 0.600" in figure.axes[0].get_title()
    assert "0.800" in figure.axes[1].get_title()
    assert len(widgets.tuning_step_figure(curve.drop(columns="memorization"), 10).axes) == 1


def test_tuning_stepper_slides_over_the_measured_updates(curve):
    stepper = widgets.tuning_stepper(curve)
    slider = stepper.children[0]
    assert list(slider.options) == [0, 5, 10] and slider.value == 10


def test_sample_explorer_draws_once_per_setting_with_the_controls_values():
    calls = []
    explorer = widgets.sample_explorer(lambda task, temperature, prefix: calls.append((task, temperature, prefix))
                                       or pd.DataFrame({"task": [task]}), {"RNG": None, "BABYNAMES": None})
    task, temperature, prefix, out = explorer.children
    assert list(task.options) == ["RNG", "BABYNAMES"] and list(prefix.options) == ["{", ""]
    assert calls == [("RNG", 1.0, "{")] and len(out.outputs) == 1     # drawn once, into the output
    temperature.value = 5.0
    task.value = "BABYNAMES"
    assert calls[1:] == [("RNG", 5.0, "{"), ("BABYNAMES", 5.0, "{")]
    assert "BABYNAMES" in out.outputs[0]["data"]["text/plain"]


def bio(name, profession="Baker"):
    return f"{{{name}}} {{Female}} {{1 May 1990}} {{Lima, Peru}} {{{profession}}} {{Baked bread.}}"


def test_biography_sheet_puts_each_models_biography_side_by_side():
    bios = {"base": parse_biographies([bio("Ana Ruiz"), "no fields here", bio("Eva Ng", "Pilot")]),
            "tuned": parse_biographies([bio("Li Wei")])}
    sheet = widgets.biography_sheet(bios, 1)       # the second well-formed biography of each
    assert list(sheet.columns) == ["base", "tuned"] and list(sheet.index) == list(FIELDS)
    assert sheet.loc["name", "base"] == "Eva Ng" and sheet.loc["profession", "base"] == "Pilot"
    assert (sheet["tuned"] == "").all()             # the tuned model has one biography only
    raw = widgets.biography_sheet(bios, 1, well_formed=False)
    assert raw.loc["problem", "base"] == "no braced fields" and raw.loc["name", "base"] == ""
    assert widgets.biography_sheet(bios, 0).loc["name", "tuned"] == "Li Wei"


def test_biography_browser_slides_over_the_longest_models_biographies():
    bios = {"base": parse_biographies([bio("Ana Ruiz")] * 3), "tuned": parse_biographies([bio("Li Wei")])}
    index, well_formed = widgets.biography_browser(bios).children[:2]
    assert (index.min, index.max, well_formed.value) == (0, 2, True)


@pytest.fixture
def comparison():
    return pd.DataFrame([
        {"method": "tuned", "probe": "rng", "n": 8, "answers": ["3", "1", "3", "2", "1", "3"]},
        {"method": "temperature 2", "probe": "rng", "n": 4, "answers": []}])


def test_answer_table_counts_valid_answers_then_the_junk(comparison):
    table = widgets.answer_table(comparison, "tuned", "rng")
    assert table["answer"].tolist() == ["3", "1", "2", widgets.NOT_VALID]   # ties broken by the answer
    assert table["count"].tolist() == [3, 2, 1, 2]
    assert np.allclose(table["share"], [3 / 8, 2 / 8, 1 / 8, 2 / 8]) and table["share"].sum() == pytest.approx(1)
    assert widgets.answer_table(comparison, "tuned", "rng", top=1)["answer"].tolist() == ["3", widgets.NOT_VALID]
    assert widgets.answer_table(comparison, "temperature 2", "rng")["count"].tolist() == [4]
    with pytest.raises(KeyError, match="no row"):
        widgets.answer_table(comparison, "tuned", "babynames")


def test_answer_figure_and_browser(comparison):
    figure = widgets.answer_figure(comparison, "tuned", "rng")
    assert figure.axes[0].get_title() == "tuned on rng: 75% valid"
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ["3", "1", "2", widgets.NOT_VALID]
    method, probe = widgets.answer_browser(comparison, method="temperature 2").children[:2]
    assert list(method.options) == ["tuned", "temperature 2"] and method.value == "temperature 2"
    assert list(probe.options) == ["rng"]


def test_a_panel_redraws_its_output_when_a_control_moves():
    bios = {"base": parse_biographies([bio("Ana Ruiz"), bio("Eva Ng")]), "tuned": parse_biographies([bio("Li Wei")])}
    index, _, out = widgets.biography_browser(bios).children
    assert len(out.outputs) == 1 and "Ana Ruiz" in out.outputs[0]["data"]["text/html"]
    index.value = 1
    assert len(out.outputs) == 1 and "Eva Ng" in out.outputs[0]["data"]["text/html"]
