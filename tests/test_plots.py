"""Chapter 7's figures through ``plots``: panels, lines and markers from the data."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from diffuse_utils import plots


@pytest.fixture(autouse=True)
def close_figures():
    """Each test's figures closed after it (pyplot keeps every figure until closed)."""
    yield
    plt.close("all")


def _curves():
    fast = pd.DataFrame(
        {"update": [0, 1, 2], "L": [3.0, 2.0, 1.0], "KL": [1, 0.5, 0.1]}
    )
    slow = pd.DataFrame(
        {"update": [0, 1, 2], "L": [3.0, 2.8, 2.5], "KL": [1, 0.9, 0.8]}
    )
    return {"fast": fast, "slow": slow}


def test_curve_grid_draws_a_panel_per_column_two_a_row():
    fig = plots.curve_grid(
        _curves(), "update", ["L", "KL", "L"], "runs", reference={"L": ("stop", 1.2)}
    )
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 4 and len(shown) == 3  # 2 x 2, the fourth hidden
    assert fig.get_size_inches()[0] <= 8  # the column's width
    assert [ax.get_title() for ax in shown] == ["L", "KL", "L"]
    first = shown[0]
    assert len(first.lines) == 3  # two runs and the reference line
    assert np.allclose(first.lines[1].get_ydata(), [3.0, 2.8, 2.5])
    assert first.lines[2].get_ydata()[0] == 1.2
    assert fig._suptitle.get_text() == "runs"


def test_curve_grid_can_reverse_its_x_axis():
    fig = plots.curve_grid(
        _curves(), "L", ["KL"], columns=1, xlabel="loss", invert_x=True
    )
    (ax,) = fig.axes
    assert ax.xaxis_inverted() and ax.get_xlabel() == "loss"


def test_scatter_grid_puts_a_row_per_y_and_stars_the_marked_rows():
    frame = pd.DataFrame(
        {
            "qa": [-5.0, 0.0, -1.0],
            "knowledge": [0.0, -2.0, 1.0],
            "gain": [0.5, 0.1, 0.3],
            "ood": [np.nan, 0.2, 0.1],
            "experiment": ["names", "six", "six"],
            "default": [True, False, False],
        }
    )
    fig = plots.scatter_grid(
        frame,
        {"qa": "QA change", "knowledge": "knowledge change"},
        {"gain": "ID gain", "ood": "OOD gain"},
        "experiment",
        "default",
        "every adapter",
    )
    assert len(fig.axes) == 4 and fig.get_size_inches()[0] <= 8
    top_left = fig.axes[0]
    assert len(top_left.collections) == 3  # one per experiment, and the stars
    assert np.allclose(top_left.collections[2].get_offsets(), [[-5.0, 0.5]])
    assert fig.axes[2].get_xlabel() == "QA change" and fig.axes[0].get_xlabel() == ""
    assert fig.axes[0].get_ylabel() == "ID gain" and fig.axes[1].get_ylabel() == ""


def test_scatter_grid_widens_an_axis_whose_values_differ_by_float_noise():
    frame = pd.DataFrame(
        {
            "knowledge": [0.0, -2e-17, -25.0],
            "gain": [0.1, 0.2, np.nan],
            "experiment": ["a", "b", "b"],
        }
    )  # the last row has no gain: not drawn
    fig = plots.scatter_grid(frame, {"knowledge": "k"}, {"gain": "g"}, "experiment")
    assert fig.axes[0].get_xlim() == pytest.approx((-1, 1))


def test_panels_fit_the_column_two_at_most():
    figure, (left, right) = plots.panels(2)
    assert figure.get_size_inches()[0] == plots.COLUMN_INCHES and len(figure.axes) == 2
    plots.lines(pd.DataFrame({"x": [0, 1], "y": [1, 2]}), "x", ["y"], ax=left)
    assert np.allclose(left.lines[0].get_ydata(), [1, 2]) and not right.lines
    single, ax = plots.panels(1)
    assert single.get_size_inches()[0] <= plots.COLUMN_INCHES and len(single.axes) == 1
    with pytest.raises(ValueError, match="one or two panels a row; got n=3"):
        plots.panels(3)


def test_lines_tick_whole_numbers_where_x_counts_something():
    per_pass = pd.DataFrame({"pass": [1, 2], "ratio": [1.5, 1.2]})
    forced = plots.lines(per_pass, "pass", ["ratio"], whole_x=False).axes[0]
    assert any(t % 1 for t in forced.get_xticks())  # 1.0, 1.2, ... without the rule
    for whole_x in (None, True):  # integers: whole ticks by default
        whole = plots.lines(per_pass, "pass", ["ratio"], whole_x=whole_x).axes[0]
        shown = [t for t in whole.get_xticks() if 1 <= t <= 2]
        assert shown == [1, 2] and not any(t % 1 for t in whole.get_xticks())
    one_pass = plots.lines(per_pass.head(1), "pass", ["ratio"]).axes[0]
    low, high = one_pass.get_xlim()
    assert [t for t in one_pass.get_xticks() if low <= t <= high] == [1]  # not 0.96
    rates = pd.DataFrame({"temperature": [0.5, 1.0], "ratio": [1.5, 1.2]})
    assert any(t % 1 for t in plots.lines(rates, "temperature", ["ratio"]).axes[0].get_xticks())


def test_curve_grid_and_bands_tick_whole_updates():
    curves = {"run": pd.DataFrame({"update": [1, 2, 3], "L": [3.0, 2.0, 1.5]})}
    ax = plots.curve_grid(curves, "update", ["L"], columns=1).axes[0]
    assert not any(t % 1 for t in ax.get_xticks())
    curves["run"]["update"] = curves["run"]["update"].astype(float) / 2  # not counts
    ax = plots.curve_grid(curves, "update", ["L"], columns=1).axes[0]
    assert any(t % 1 for t in ax.get_xticks())
    frame = pd.DataFrame({"high": [5, 5, 6, 6], "H": [1.0, 1.2, 1.1, 1.3], "run": ["a"] * 4})
    band = plots.lines_with_ci(frame, "high", "H", "run").axes[0]
    assert not any(t % 1 for t in band.get_xticks())
