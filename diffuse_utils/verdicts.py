"""Chapter 7's outcomes said in sentences: each function takes the chapter's tables and
returns a sentence that reads as one whatever the outcome (no run qualifies, every run
does, a tie), with its numbers in it. Comparative words (most, more than, only) are
decided here from the numbers, never typed in the prose.

Example::

    pick_sentence("BABYNAMES", None, "lr 0.0005, rank 4")
    # 'For BABYNAMES no run qualifies, so the rule leaves the book's default
    #  (lr 0.0005, rank 4) unconfirmed.'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .ablation_runs import common_memorization

MAJORITY = 0.5  # a share of valid names outside the targets above this is a majority


def run_name(row) -> str:
    """``"lr 0.0005, rank 4"``: a BABYNAMES run's settings (a row of ``names_runs``)."""
    return f"lr {row['lr']:g}, rank {row['rank']:.0f}"


def _checkpoint(row, where: bool = True) -> str:
    """A run's checkpoint, its share outside the targets and its valid rate."""
    place = ""
    if where:
        place = (
            f", at gamma {row['gamma']:g}"
            if row["stopped"]
            else f", after {row['updates']} updates"
        )
    share = f"{row['outside (generations)']:.2f} outside, valid {row['valid_rate']:.2f}"
    return f"{run_name(row)}{place} ({share})"


def _listing(rows: pd.DataFrame, where: bool = True) -> str:
    """The distinct checkpoints of ``rows`` (a run short of both thresholds: one)."""
    return "; ".join(dict.fromkeys(_checkpoint(r, where) for _, r in rows.iterrows()))


def majority_runs(table: pd.DataFrame) -> str:
    """The checkpoints of ``names_runs``' table with a majority of valid generations
    outside the targets, each with where it was taken; ``"no run"`` if none."""
    labels = []
    for _, row in table[table["outside (generations)"] > MAJORITY].iterrows():
        where = f"after {row['updates']} updates, short of the early stop"
        if row["stopped"]:
            where = f"at gamma {row['gamma']:g}"
        share = (
            f"{row['outside (generations)']:.2f} outside, valid {row['valid_rate']:.2f}"
        )
        labels.append(f"{run_name(row)}, {where} ({share})")
    return "; ".join(dict.fromkeys(labels)) or "no run"


def _reach(stopped: pd.DataFrame, runs: int, gamma: float) -> str:
    """``"2 of the 5 runs (lr 0.0005, rank 4; ...) reach the early stop at γ = 0.2"``,
    in every count (``stopped``: the rows at ``gamma`` that reached it)."""
    stop, reached = f"the early stop at γ = {gamma:g}", len(stopped)
    if runs == 1:
        return f"The one run {'reaches' if reached else 'does not reach'} {stop}"
    if reached == 0:
        return f"No run of the {runs} reaches {stop}"
    if reached == runs:
        return f"All {runs} runs reach {stop}"
    names = "; ".join(run_name(row) for _, row in stopped.iterrows())
    verb = "reaches" if reached == 1 else "reach"
    return f"{reached} of the {runs} runs ({names}) {verb} {stop}"


def outside_verdict(table: pd.DataFrame, gamma: float) -> str:
    """How many runs of ``names_runs``' table reach the early stop at ``gamma``, and
    which checkpoints, at it or short of it, put a majority of valid names outside the
    targets."""
    at_gamma = table["gamma"] == gamma
    stop = table["stopped"] & at_gamma
    wide = table["outside (generations)"] > MAJORITY
    text = _reach(table[stop], int(at_gamma.sum()), gamma)
    outside = "a majority of valid names falls outside the targets for"
    if (stop & wide).any():
        text += f", where {outside} {_listing(table[stop & wide], where=False)}"
    elif stop.any():
        text += ", where no run has a majority of its valid names outside the targets"
    short = table[wide & ~stop]
    if short.empty:
        return f"{text}; short of it, no checkpoint has a majority outside the targets."
    return f"{text}; short of it, {outside} {_listing(short)}."


def memorization_verdict(curves: dict[str, pd.DataFrame]) -> str:
    """Whether the runs' memorization ratios (``diagnostic_curves``) still differ once
    compared at one loss, the lowest ``L / H(p*)`` every run reaches: if they differ by
    at most half as much as at the runs' ends, how far a run goes sets how much it
    memorizes; otherwise the rate and rank change how the loss is lowered."""
    if len(curves) < 2:
        return "With one run there is nothing to compare."
    level, at_level = common_memorization(curves)
    ends = pd.Series({k: c["memorization"].iloc[-1] for k, c in curves.items()})
    same, apart = np.ptp(at_level.to_numpy()), np.ptp(ends.to_numpy())
    text = (
        f"At L / H(p*) = {level:.2f}, a loss every run reaches, the runs' memorization "
        f"ratios lie within {same:.3f} of each other, against {apart:.3f} at their ends"
    )
    if apart == 0:
        return f"{text}: the runs memorize alike, wherever they stop."
    if same <= apart / 2:
        return (
            f"{text}: how far a run goes, more than its learning rate or rank, sets "
            "how much it memorizes."
        )
    return (
        f"{text}: the learning rate and rank change how the model lowers the loss, "
        "not only how far it gets."
    )


def _change(nats: float) -> str:
    """A signed change in nats to 2 decimals, 3 where 2 would read -0.00 or +0.00, two
    significant digits below that (-0.00012); "unmeasured" for NaN."""
    if pd.isna(nats):
        return "unmeasured"
    if abs(nats) >= 0.005 or nats == 0:
        return f"{nats:+.2f}"
    return f"{nats:+.3f}" if abs(nats) >= 0.0005 else f"{nats:+.2g}"


def transfer_verdict(runs: pd.DataFrame, default: str) -> str:
    """Which run (``runs``: indexed by label, with ``OOD entropy gain``) raises the
    left-out family's exact entropy the most, and what the book's ``default`` gains."""
    gains = runs["OOD entropy gain"].dropna()
    if gains.empty:
        return "No run has a left-out family to measure."
    top = gains.idxmax()
    if len(gains) == 1:
        text = f"The one run, {top}, changes the left-out family's exact entropy by "
        text += f"{_change(gains[top])} nats"
    elif gains[top] <= 0:
        text = (
            f"No run raises the left-out family's exact entropy: the changes run from "
            f"{_change(gains.min())} to {_change(gains.max())} nats"
        )
    else:
        text = f"The left-out family's exact entropy gains the most under {top} "
        text += f"({_change(gains[top])} nats)"
    if default not in gains.index:
        return f"{text}; the book's default, {default}, is not among these runs."
    if default == top and gains[top] <= 0 and len(gains) > 1:
        return f"{text}; the book's default, {default}, loses the least."
    if default == top:
        return f"{text}; that is the book's default."
    change = _change(gains[default])
    return f"{text}; the book's default, {default}, changes it by {change}."


def format_verdict(base: float, six: float, free: float) -> str:
    """Whether the six-task adapter ends its turn after a pre-filled ``{Name}`` because
    its targets end there: ``base``, ``six`` and ``free`` are p(end of turn) of the base
    model, the adapter and the adapter tuned without the end of turn."""
    said = (
        f"after {{Name}} the six-task adapter ends its turn with probability {six:.2f}"
    )
    if six <= base:
        return f"No: {said}, no more than the base model ({base:.2f})."
    if free < six:
        return (
            f"Yes: {said} against the base model's {base:.2f}, and the adapter tuned "
            f"without the end of turn with {free:.2f}."
        )
    return (
        f"Not its targets' end of turn: {said} against the base model's {base:.2f}, "
        f"but tuned without the end of turn it ends there with {free:.2f}."
    )


def dose_verdict(doses: pd.Series) -> str:
    """How p(end of turn) moves as the adapter's LoRA update is scaled: ``doses``, the
    probability by scale factor."""
    doses = doses.sort_index()
    low, high = doses.index[0], doses.index[-1]
    if len(doses) == 1:
        return f"At x{low:g} its p(end of turn) is {doses.iloc[0]:.2f}."
    steps = np.diff(doses.to_numpy())
    span = f"from {doses.iloc[0]:.2f} at x{low:g} to {doses.iloc[-1]:.2f} at x{high:g}"
    if (steps > 0).all():
        return (
            f"Scaling its LoRA update up raises p(end of turn) at every step, {span}."
        )
    if (steps < 0).all():
        return (
            f"Scaling its LoRA update up lowers p(end of turn) at every step, {span}."
        )
    return (
        f"Scaling its LoRA update moves p(end of turn) between {doses.min():.2f} and "
        f"{doses.max():.2f}, not one way ({span})."
    )


def coverage_verdict(tuned: dict[str, float], base: float) -> str:
    """Whether any format-controlled model (``tuned``: label -> distinct first names)
    covers more first names than the base model (``base``), as a clause."""
    above = [label for label, value in tuned.items() if value > base]
    if not above:
        return (
            "the short-answer tasks' diversity does not carry into biographies' first "
            "names: no format-controlled adapter covers more first names than the base "
            "model"
        )
    return f"first-name coverage rises above the base model's for: {', '.join(above)}"


def utility_verdict(points: pd.DataFrame) -> str:
    """How far the exact knowledge probe and greedy capital QA fall across adapters
    (``points``: ``<probe> change`` and ``<probe> se`` in points), and whether either
    fall exceeds twice its standard error."""
    worst, beyond = {}, {}
    for probe in ("knowledge", "qa_named"):
        change, error = points[f"{probe} change"], points[f"{probe} se"]
        worst[probe] = points.loc[change.idxmin()]
        beyond[probe] = bool(((change < -2 * error) & (change < 0)).any())
    k, q = worst["knowledge"], worst["qa_named"]
    k_fall, q_fall = max(0, -k["knowledge change"]), max(0, -q["qa_named change"])
    text = (
        f"The exact knowledge probe falls by at most {k_fall:.0f} points (standard "
        f"error {k['knowledge se']:.0f}) and greedy capital QA by at most {q_fall:.0f} "
        f"(standard error {q['qa_named se']:.0f})"
    )
    if beyond["knowledge"] and beyond["qa_named"]:
        return f"{text}: both beyond twice their standard errors, so knowledge is lost."
    if beyond["qa_named"]:
        return f"{text}: the greedy answers change form, the knowledge does not."
    if beyond["knowledge"]:
        return f"{text}: the knowledge probe falls beyond twice its standard error."
    return f"{text}: neither falls by more than twice its standard error."


def pick_sentence(what: str, pick: str | None, default: str) -> str:
    """What the defaults rule picks for ``what`` (``None``: no run qualifies), against
    the book's ``default``."""
    if pick is None:
        return (
            f"For {what} no run qualifies, so the rule leaves the book's default "
            f"({default}) unconfirmed."
        )
    if pick == default:
        return f"For {what} the rule picks {pick}, the book's default."
    return f"For {what} the rule picks {pick}, not the book's default ({default})."


def pick_consequence(runs: pd.DataFrame, pick: str | None, default: str) -> str:
    """When the six-task pick is not the schedule chapters 4-6 ran, what that means
    (``runs``: indexed by label, with ``OOD entropy gain``); ``""`` otherwise."""
    if pick is None or pick == default:
        return ""
    gains = runs["OOD entropy gain"]
    own = gains.get(default, np.nan)
    pick_change = _change(gains[pick])
    changes = (
        "was not measured here"
        if pd.isna(own)
        else f"changes by {_change(own)} nats, against {pick_change} for the pick"
    )
    return (
        f"Chapters 4-6 in this build still use their own schedule, whose left-out "
        f"family's exact entropy {changes}: their transfer figures are for that "
        f"schedule, and re-running them with the pick is the next step."
    )


def rank_note(pick, any_rank, ranks=()) -> str:
    """What the BABYNAMES rule would pick without its rank condition (``pick``,
    ``any_rank``: rows of ``names_runs``' table, or ``None`` when no run qualifies;
    ``ranks``: the ranks the runs used, when one rank ran there is nothing to drop)."""
    distinct = sorted(set(ranks))
    if len(distinct) == 1:
        return (
            f"Every run here has rank {distinct[0]}, so the rank condition decides "
            "nothing; the full profile crosses ranks."
        )
    if any_rank is None:
        return "Without the rank condition no run would qualify either."
    if pick is not None and run_name(any_rank) == run_name(pick):
        return "Without the rank condition it would pick the same run."
    return f"Without the rank condition it would pick {run_name(any_rank)}."
