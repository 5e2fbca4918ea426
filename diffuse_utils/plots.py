"""Figures for the book. Each function takes data and returns a matplotlib Figure;
styling is applied only by an explicit :func:`use_book_style` call.

Example::

    use_book_style()
    fig = distribution_bars(
        {"SmolLM2": model_probs, "natural": uniform}, title="RNG 1-10"
    )
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from .tables import label


def use_book_style() -> None:
    """Seaborn's whitegrid theme at a size readable in the rendered book, and tables
    whose cells show their whole text (a page's table cells wrap; pandas would cut
    them at 50 characters with "...")."""
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
    pd.set_option("display.max_colwidth", None)


COLUMN_INCHES = 7.5  # the text column's width: a figure this wide is drawn at full size
PANEL_INCHES = 6.5  # one panel alone, a little narrower than the column


def panels(n: int = 2, height: float = 3.4):
    """``(figure, axes)``: ``n`` panels in a row (at most two) across the text column,
    for a figure whose panels other functions here draw with ``ax=``.
    Example: ``figure, (left, right) = panels(2)``."""
    if n not in (1, 2):
        raise ValueError(f"panels(n) draws one or two panels a row; got n={n}")
    width = COLUMN_INCHES if n == 2 else PANEL_INCHES
    figure, axes = plt.subplots(1, n, figsize=(width, height))
    return figure, axes


def distribution_bars(
    distributions: dict[str, pd.Series],
    top: int | None = None,
    title: str = "",
    order: list | None = None,
    ax=None,
):
    """Grouped bars of several distributions over the same outcomes (Fig. 1 of the
    paper).

    distributions: name -> Series (outcome -> probability). Outcomes are ordered by
    ``order``, else by the first distribution's probability; ``top`` keeps that many.
    """
    frame = pd.DataFrame(distributions).fillna(0.0)
    first = next(iter(distributions))
    frame = (
        frame.loc[order]
        if order is not None
        else frame.sort_values(first, ascending=False, kind="stable")
    )
    frame = frame.head(top) if top else frame
    long = (
        frame.rename_axis("outcome")
        .reset_index()
        .melt("outcome", var_name="distribution", value_name="probability")
    )
    own = ax is None  # a figure of its own: room for the legend beside the axes
    if own:
        _, ax = plt.subplots(figsize=(max(6, 0.6 * len(frame)), 3.5))
    sns.barplot(long, x="outcome", y="probability", hue="distribution", ax=ax)
    ax.set(title=title, xlabel="")
    ax.tick_params(
        axis="x",
        rotation=45
        if len(frame) > 10 or frame.index.astype(str).str.len().max() > 3
        else 0,
    )
    return _finish(ax, own)


def lines(
    frame: pd.DataFrame,
    x: str,
    ys: list[str],
    title: str = "",
    reference: dict[str, float] | None = None,
    logx: bool = False,
    ax=None,
    whole_x: bool | None = None,
):
    """One line per column in ``ys`` against ``x``; ``reference`` draws labelled
    horizontal lines; ``whole_x`` ticks whole numbers only (passes, not 1.2), by default
    where ``x`` is a column of integers."""
    own = ax is None  # a figure of its own: room for the legend beside the axes
    if own:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for column in ys:
        ax.plot(frame[x], frame[column], marker="o", label=column)
    for name, value in (reference or {}).items():
        ax.axhline(value, linestyle="--", color="grey", linewidth=1)
        ax.annotate(
            name,
            (frame[x].min(), value),
            textcoords="offset points",
            xytext=(2, 3),
            fontsize=9,
        )
    ax.set(title=title, xlabel=label(x), xscale="log" if logx else "linear")
    if whole_x or (whole_x is None and not logx and _counts(frame[x])):
        whole_ticks(ax)
    ax.legend()
    return _finish(ax, own)


def lines_with_ci(
    frame: pd.DataFrame,
    x: str,
    y: str,
    hue: str,
    title: str = "",
    reference: str | None = None,
    seed: int = 0,
    ax=None,
):
    """Mean of ``y`` per ``x`` and ``hue`` with a seeded 95% bootstrap band over the
    rows (e.g. prompts).

    reference: an optional column of ``frame`` drawn as a dashed line (e.g. the uniform
    entropy ln n).
    """
    own = ax is None  # a figure of its own: room for the legend beside the axes
    if own:
        _, ax = plt.subplots(figsize=(6, 3.5))
    sns.lineplot(
        frame, x=x, y=y, hue=hue, marker="o", errorbar=("ci", 95), seed=seed, ax=ax
    )
    if reference:
        curve = frame.groupby(x)[reference].first()
        ax.plot(
            curve.index, curve.to_numpy(), linestyle="--", color="grey", label=reference
        )
        ax.legend()
    ax.set(title=title, xlabel=label(x), ylabel=label(y))
    if _counts(frame[x]):
        whole_ticks(ax)
    return _finish(ax, own)


def grouped_bars(
    frame: pd.DataFrame, x: str, y: str, hue: str, title: str = "", ax=None
):
    """Bars of ``y`` per ``x``, one colour per ``hue`` (e.g. seconds per task and
    method)."""
    own = ax is None  # a figure of its own: room for the legend beside the axes
    if own:
        _, ax = plt.subplots(figsize=(7, 3.5))
    sns.barplot(frame, x=x, y=y, hue=hue, ax=ax)
    ax.set(title=title, xlabel="", ylabel=label(y))
    labels = [textwrap.fill(label(t.get_text()), 14) for t in ax.get_xticklabels()]
    ax.set_xticks(ax.get_xticks(), labels)  # long labels wrap, not run together
    ax.tick_params(axis="x", labelsize=8)
    return _finish(ax, own)


def _counts(values: pd.Series) -> bool:
    """Whether an x column counts something (updates, passes): integers, not 0.5."""
    return pd.api.types.is_integer_dtype(values)


def whole_ticks(ax) -> None:
    """Ticks at whole numbers only: no "2.5 updates" on an axis of a few updates."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def _finish(ax, own: bool):
    """Lay out ``ax``'s figure and return it; a figure of its ``own`` then has its
    legend moved off the data (after the layout: the saved figure grows to hold it)."""
    ax.figure.tight_layout()
    if own:
        _legend_outside(ax)
    return ax.figure


def _legend_outside(ax, longest: int = 20):
    """Move ``ax``'s legend off the data: beside the axes, or below the x labels in two
    columns when an entry is longer than ``longest`` characters (it would squeeze the
    axes). Nothing to move without a legend."""
    if ax.get_legend() is None:
        return
    names = [t.get_text() for t in ax.get_legend().get_texts()]
    style = dict(frameon=False, fontsize=8)
    if max(map(len, names), default=0) <= longest:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), **style)
        return
    ax.figure.canvas.draw()  # the tick labels' extent is known once drawn
    to_axes = ax.transAxes.inverted()
    boxes = [to_axes.transform(t.get_window_extent()) for t in ax.get_xticklabels()]
    bottom = min((box[0][1] for box in boxes), default=0.0)
    sns.move_legend(
        ax, "upper center", bbox_to_anchor=(0.5, bottom - 0.03), ncol=2, **style
    )


def tradeoff_scatter(
    frame: pd.DataFrame, x: str, y: str, hue: str, style: str, title: str = "", ax=None
):
    """One marker per row: ``x`` against ``y``, colour by ``hue`` (e.g. method), shape
    by ``style`` (e.g. task)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    sns.scatterplot(frame, x=x, y=y, hue=hue, style=style, s=70, ax=ax)
    ax.set(title=title, xlabel=label(x), ylabel=label(y))
    ax.legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left", frameon=False)
    ax.figure.tight_layout()
    return ax.figure


def world_maps(
    points: dict[str, pd.DataFrame], polygons, title: str = "", columns: int = 1
):
    """One map per entry of ``points`` (name -> frame with ``latitude``, ``longitude``),
    a circle per row over the land outline ``polygons`` (``places.land_polygons()``),
    equirectangular (Fig. 5)."""
    rows = -(-len(points) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(7 * columns, 3.6 * rows), squeeze=False
    )
    for ax, (name, frame) in zip(axes.flat, points.items()):
        for polygon in polygons:
            # holes (index > 0) painted back in the sea colour
            for index, ring in enumerate(polygon):
                xs, ys = zip(*ring)
                ax.fill(xs, ys, color="#d9d9d9" if index == 0 else "white", linewidth=0)
        located = frame.dropna(subset=["latitude", "longitude"])
        ax.scatter(
            located["longitude"],
            located["latitude"],
            s=14,
            facecolors="none",
            edgecolors="C3",
            linewidths=0.8,
        )
        ax.set(
            xlim=(-180, 180),
            ylim=(-60, 85),
            aspect="equal",
            xticks=[],
            yticks=[],
            title=f"{name}: {len(located)} birth places located",
        )
        ax.grid(False)
    for ax in list(axes.flat)[len(points) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def curve_grid(
    curves: dict[str, pd.DataFrame],
    x: str,
    ys: list[str],
    title: str = "",
    reference: dict[str, tuple[str, float]] | None = None,
    columns: int = 2,
    xlabel: str | None = None,
    invert_x: bool = False,
):
    """One panel per column of ``ys``, one line per entry of ``curves`` (label -> frame
    with ``x`` and the ``ys``), at most ``columns`` panels a row at the column's width.

    reference: panel -> ``(label, value)``, a dotted horizontal line on that panel.
    invert_x: draw ``x`` decreasing (e.g. a loss that falls as training goes on).
    Example: ``curve_grid({"lr 5e-4": frame}, "update", ["L", "KL"])``, 2 panels.
    """
    rows = -(-len(ys) // columns)
    width = COLUMN_INCHES if columns > 1 else PANEL_INCHES
    fig, axes = plt.subplots(
        rows, columns, figsize=(width, 3.1 * rows + 0.6), squeeze=False
    )
    for ax, y in zip(axes.flat, ys):
        for name, frame in curves.items():
            ax.plot(frame[x], frame[y], marker=".", label=name)
        if reference and y in reference:
            label, value = reference[y]
            ax.axhline(value, color="grey", linestyle=":", label=label)
        ax.set(title=y, xlabel=xlabel or x)
        if all(_counts(frame[x]) for frame in curves.values()):
            whole_ticks(ax)
        if invert_x:
            ax.invert_xaxis()
    for ax in list(axes.flat)[len(ys) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def scatter_grid(
    frame: pd.DataFrame,
    xs: dict[str, str],
    ys: dict[str, str],
    hue: str,
    marked: str | None = None,
    title: str = "",
):
    """A grid of scatter plots, one row per column of ``ys`` and one panel per column of
    ``xs`` (each dict: column -> axis label; two ``xs`` for the column's width), one
    colour per value of ``hue``; rows where the boolean column ``marked`` holds get a
    star. A panel whose drawn ``x`` values are all equal spans +-1 around them.
    Example: ``scatter_grid(points, {"qa": "QA"}, {"gain": "gain"}, "run")``.
    """
    fig, axes = plt.subplots(
        len(ys),
        len(xs),
        figsize=(3.8 * len(xs), 3.1 * len(ys) + 0.6),
        squeeze=False,
        sharex="col",
    )
    for row, (y, ylabel) in enumerate(ys.items()):
        for col, (x, xlabel) in enumerate(xs.items()):
            ax = axes[row, col]
            for name, group in frame.groupby(hue):
                ax.scatter(group[x], group[y], label=name, alpha=0.8)
            if marked is not None:
                stars = frame[frame[marked].astype(bool)]
                ax.scatter(
                    stars[x],
                    stars[y],
                    marker="*",
                    s=250,
                    facecolors="none",
                    edgecolors="black",
                    label=marked,
                )
            ax.axvline(0, color="grey", linewidth=0.5)
            drawn = frame[[x, y]].dropna()[x].to_numpy(dtype=float)
            if len(drawn) and np.ptp(drawn) < 1e-9:  # equal but for float noise
                ax.set_xlim(drawn.mean() - 1, drawn.mean() + 1)
            ax.set(
                xlabel=xlabel if row == len(ys) - 1 else "",
                ylabel=ylabel if col == 0 else "",
            )
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def held_out_curves(
    curves: dict[str, pd.DataFrame], others: dict[str, pd.DataFrame] | None = None
):
    """Chapter 8's figure: for each run, the held-out names' exact share over ``p*``'s
    against updates (left; 1 is ``p*``), and the memorization ratio against the loss on
    the list, ``L / H(p*)`` (right; training moves right). ``curves``: label -> a
    ``remedies.run_curve`` frame, drawn in colour; ``others`` (e.g. chapter 7's runs)
    in thin grey lines."""
    figure, (left, right) = panels(2)
    drawn = ((left, "update", "share_ratio"), (right, "L / H", "memorization"))
    for ax, x, y in drawn:
        for name, curve in (others or {}).items():
            ax.plot(curve[x], curve[y], color="0.7", linewidth=0.8, label="_" + name)
        for name, curve in curves.items():
            ax.plot(curve[x], curve[y], marker=".", label=name)
    if others:
        left.plot([], [], color="0.7", linewidth=0.8, label="chapter 7's runs")
    left.axhline(1, linestyle="--", color="grey", linewidth=1)
    whole_ticks(left)
    left.set(
        xlabel="update",
        ylabel="held-out share / p*'s",
        yscale="log",
        title="Names never trained on",
    )
    right.invert_xaxis()
    right.set(
        xlabel="L / H(p*) on the list",
        ylabel="memorization ratio",
        yscale="log",
        title="Memorization against the loss",
    )
    left.legend(fontsize=7)
    figure.tight_layout()
    return figure
