"""Widgets where readers play, over results a chapter has already computed: none tunes,
and only chapter 1's :func:`sample_explorer` samples (a fresh draw per setting, which is
its point).

Each widget is a plain function that draws one state (a figure or a table) behind a few
controls (ipywidgets). The rendered book cannot run a widget, so the chapter shows the
plain function's output for one state, or an existing figure or table, as its static
fallback (``scripts/check_site.py``'s ``WIDGET_FALLBACKS``).

Example::

    curve = diagnostics.terms(history, "babynames")
    tuning_step_figure(curve, update=10)  # the curves with a marker at update 10
    tuning_stepper(curve)  # the same behind a slider over the measured updates
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from . import plots
from .biographies import FIELDS

NOT_VALID = "(not a valid answer)"  # the row of answer_table that counts junk


def _output(result) -> dict:
    """``result`` (a figure, a table) as one display output; a figure is closed so it is
    drawn once."""
    from IPython.core.interactiveshell import InteractiveShell

    data, metadata = InteractiveShell.instance().display_formatter.format(result)
    if isinstance(result, plt.Figure):
        plt.close(result)
    return {"output_type": "display_data", "data": data, "metadata": metadata}


def _panel(draw, **controls):
    """``controls`` above an Output widget showing ``draw(**their values)``, redrawn
    when one changes.

    The drawing is written into the Output widget's ``outputs`` as data, not displayed
    inside it: headless execution (papermill, nbclient) can hang on ``interact``'s
    captured displays."""
    from ipywidgets import Output, VBox

    out = Output()

    def redraw(_change=None):
        out.outputs = (
            _output(
                draw(**{name: control.value for name, control in controls.items()})
            ),
        )

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    return VBox([*controls.values(), out])


def values_at(curve: pd.DataFrame, update: int) -> pd.Series:
    """The terms measured at ``update``, or at the last measured update before it.

    curve: ``diagnostics.terms(history, task)`` (columns ``update``, ``L``, ``H``,
    ``KL``, ``neg_log_mass``, optionally ``memorization``). Returns ``update``,
    ``L - H(p*)``, ``KL``, ``-log M`` (and ``memorization``). Example:
    ``values_at(curve, 0)["KL"]``, the KL before tuning.
    """
    measured = curve[curve["update"] <= update]
    row = measured.iloc[-1] if len(measured) else curve.iloc[0]
    values = {
        "update": int(row["update"]),
        "L - H(p*)": row["L"] - row["H"],
        "KL": row["KL"],
        "-log M": row["neg_log_mass"],
    }
    if "memorization" in curve:
        values["memorization"] = row["memorization"]
    return pd.Series(values)


def tuning_step_figure(curve: pd.DataFrame, update: int):
    """The run's L - H(p*), KL and -log M (and memorization) against the update, a
    dotted marker at ``update`` and the values there in the titles. Returns the
    Figure."""
    values = values_at(curve, update)
    frame = curve.assign(
        **{"L - H(p*)": curve["L"] - curve["H"], "-log M": curve["neg_log_mass"]}
    )
    panels = 1 + ("memorization" in curve)
    figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.8), squeeze=False)
    terms = ["L - H(p*)", "KL", "-log M"]
    plots.lines(
        frame,
        "update",
        terms,
        ax=axes[0, 0],
        title=f"update {values['update']}: "
        + ", ".join(f"{t} {values[t]:.3f}" for t in terms),
    )
    if panels == 2:
        plots.lines(
            frame,
            "update",
            ["memorization"],
            ax=axes[0, 1],
            title=f"memorization ratio {values['memorization']:.3f}",
        )
    for ax in axes[0]:
        ax.axvline(values["update"], color="black", linestyle=":", linewidth=1.5)
    figure.tight_layout()
    return figure


def tuning_stepper(curve: pd.DataFrame):
    """A slider over the measured updates of ``curve`` drawing
    :func:`tuning_step_figure` (starts at the last)."""
    from ipywidgets import SelectionSlider

    updates = [int(u) for u in curve["update"]]
    slider = SelectionSlider(
        options=updates,
        value=updates[-1],
        description="update",
        continuous_update=False,
    )
    return _panel(lambda update: tuning_step_figure(curve, update), update=slider)


def sample_explorer(show_samples, tasks, temperature: float = 1.0, prefixes=("{", "")):
    """Chapter 1's explorer: a task menu (``tasks``' keys), a temperature slider (0.2 to
    20) and a response-prefix menu drawing ``show_samples(task, temperature, prefix)``,
    which samples afresh. Built like the other widgets (``_panel``), not with
    ``ipywidgets.interactive``, whose captured displays can hang headless execution."""
    from ipywidgets import Dropdown, FloatSlider

    return _panel(
        show_samples,
        task=Dropdown(options=list(tasks), description="task"),
        temperature=FloatSlider(
            value=temperature,
            min=0.2,
            max=20.0,
            step=0.2,
            description="temperature",
            continuous_update=False,
        ),
        prefix=Dropdown(options=list(prefixes), description="prefix"),
    )


def biography_sheet(
    bios: dict[str, pd.DataFrame], index: int, well_formed: bool = True
) -> pd.DataFrame:
    """Biography ``index`` of each model, side by side: one column per model, one row
    per field.

    bios: model name -> ``biographies.parse_biographies`` frame. well_formed: count only
    the generations that parsed (else every generation, with a ``problem`` row). A model
    with fewer biographies than ``index + 1`` gets an empty column. Example:
    ``biography_sheet(bios, 0)``.
    """
    rows = list(FIELDS) + ([] if well_formed else ["problem"])
    columns = {}
    for name, frame in bios.items():
        frame = frame[frame["problem"].isna()] if well_formed else frame
        picked = frame.iloc[index] if 0 <= index < len(frame) else None
        columns[name] = [
            "" if picked is None or pd.isna(picked[r]) else str(picked[r]) for r in rows
        ]
    return pd.DataFrame(columns, index=pd.Index(rows, name="field"))


def _wrapped(table: pd.DataFrame):
    return table.style.set_properties(
        **{"white-space": "pre-wrap", "text-align": "left"}
    )


def biography_browser(bios: dict[str, pd.DataFrame]):
    """A slider over the biography index and a well-formed-only switch, drawing
    :func:`biography_sheet`."""
    from ipywidgets import Checkbox, IntSlider

    longest = max(len(frame) for frame in bios.values())
    return _panel(
        lambda index, well_formed: _wrapped(biography_sheet(bios, index, well_formed)),
        index=IntSlider(0, 0, max(longest - 1, 0), description="biography"),
        well_formed=Checkbox(True, description="well-formed only"),
    )


def _comparison_row(comparison: pd.DataFrame, method: str, probe: str) -> pd.Series:
    rows = comparison[(comparison["method"] == method) & (comparison["probe"] == probe)]
    if rows.empty:
        raise KeyError(f"no row for method {method!r} on probe {probe!r}")
    return rows.iloc[0]


def answer_table(
    comparison: pd.DataFrame, method: str, probe: str, top: int = 10
) -> pd.DataFrame:
    """The ``top`` most frequent valid answers of ``method`` on ``probe``, then the
    junk.

    comparison: rows of ``baselines.compare_probes`` (``method``, ``probe``, ``n``
    generations, ``answers``: the valid ones). Columns ``answer``, ``count``, ``share``
    (of all ``n`` generations); the last row, ``NOT_VALID``, counts the generations with
    no valid answer. Ties are broken by the answer. Example:
    ``answer_table(comparison, "tuned", "rng")``.
    """
    row = _comparison_row(comparison, method, probe)
    counts = pd.Series(row["answers"], dtype=object).value_counts()
    counts = (
        counts.sort_index(kind="stable")
        .sort_values(ascending=False, kind="stable")
        .head(top)
    )
    table = pd.DataFrame(
        {"answer": counts.index.astype(str), "count": counts.to_numpy()}
    )
    junk = pd.DataFrame(
        {"answer": [NOT_VALID], "count": [int(row["n"]) - len(row["answers"])]}
    )
    table = pd.concat([table, junk], ignore_index=True)
    return table.assign(share=table["count"] / row["n"])


def answer_figure(comparison: pd.DataFrame, method: str, probe: str, top: int = 15):
    """Bars of :func:`answer_table` (shares of all generations, the junk bar last).
    Returns the Figure."""
    table = answer_table(comparison, method, probe, top)
    valid = 1 - table["share"].iloc[-1]
    title = f"{method} on {probe}: {valid:.0%} valid"
    return plots.distribution_bars(
        {method: table.set_index("answer")["share"]},
        title=title,
        order=list(table["answer"]),
    )


def answer_browser(
    comparison: pd.DataFrame, method: str | None = None, probe: str | None = None
):
    """Drop-downs for the method and the probe of ``comparison``, drawing
    :func:`answer_figure`."""
    from ipywidgets import Dropdown

    methods, probes = (
        list(dict.fromkeys(comparison["method"])),
        list(dict.fromkeys(comparison["probe"])),
    )
    return _panel(
        lambda method, probe: answer_figure(comparison, method, probe),
        method=Dropdown(
            options=methods, value=method or methods[0], description="method"
        ),
        probe=Dropdown(options=probes, value=probe or probes[0], description="probe"),
    )
