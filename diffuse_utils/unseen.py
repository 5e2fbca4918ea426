"""How much of its probability a tuned model gives names it was never tuned on
(chapter 8), measured exactly and by sampling, and the verdict over remedies.

On an evaluation set ``E`` of listed names ``T`` and held-out names ``H`` (drawn from
``p*`` but in no list), the *held-out share* is ``sum_H q / sum_E q``: exact, from the
memorization ratio ``m = mean_H q / mean_T q`` of ``diagnostics`` as
``|H| m / (|H| m + |T|)`` (:func:`held_out_share`). Beside the same share under ``p*``
(:func:`p_star_share`) it gives the *held-out ratio*: 1 where the model treats names it
never saw as ``p*`` does, 0 where it gives them nothing.

- :func:`run_curve`, :func:`exact_figures`: those figures along a monitored run, or now;
- :func:`validation_stop`: where a run stops when a validation mass stops rising;
- :func:`memorization_at`: the memorization ratio where a run's loss reaches a level;
- :func:`generation_figures`: the sampled figures (``remedies.Evaluation`` makes a whole
  row of chapter 8's table, cached per adapter);
- :func:`verdict`: which remedy, if any, brings the held-out ratio nearest 1.

Example::

    held_out_share(1.0, 150, 50)  # 0.25: every name equally likely
    validation_stop(curve, "validation_mass", patience=2)  # {'best': 25, 'stopped': 35}
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .tasks import Task


def p_star_share(p_star: pd.Series, targets, held_out) -> float:
    """The held-out names' share of the evaluation set's mass under ``p_star`` (a
    Series: name -> probability): ``sum_H p* / (sum_H p* + sum_T p*)`` over the
    evaluation set ``T + H``. Names missing from ``p_star`` count 0."""
    mass = p_star.reindex(list(dict.fromkeys([*targets, *held_out])), fill_value=0.0)
    held = mass[list(held_out)].sum()
    return float(held / mass.sum())


def held_out_share(memorization, n_targets: int, n_held_out: int):
    """The model's share of the evaluation set's mass on the held-out names, exactly,
    from the memorization ratio ``m = mean_H q / mean_T q``:
    ``n_H m / (n_H m + n_T)``. Takes a number or an array. Example:
    ``held_out_share(1.0, 150, 50) == 0.25`` (all names equally likely)."""
    held = n_held_out * np.asarray(memorization, float)
    return held / (held + n_targets)


def held_out_mass(memorization, neg_log_mass, n_targets: int, n_held_out: int):
    """The model's probability of answering with any held-out name,
    ``sum_H q = n_H m M / n_T``, where ``M = exp(-neg_log_mass)`` is its mass on the
    targets (one prompt). Takes numbers or arrays."""
    mass = np.exp(-np.asarray(neg_log_mass, float))
    return n_held_out * np.asarray(memorization, float) * mass / n_targets


def run_curve(
    history: pd.DataFrame,
    task: Task,
    share_under_p_star: float,
    validation: str | None = None,
):
    """A run's measured updates for the evaluation ``task`` (targets ``T`` and
    ``metadata['held_out']``): the monitor's ``L``, ``H``, ``KL``, ``neg_log_mass`` and
    ``memorization``, with ``L / H``, ``held_out_share``, ``share_ratio`` (that share
    over ``share_under_p_star``: 1 is ``p*``'s) and ``held_out_mass``; with
    ``validation`` (a monitored task's name), ``validation_mass``, the exact mass of
    its targets."""
    from .diagnostics import terms

    curve = terms(history, task.name)
    sizes = len(task.targets), len(task.metadata["held_out"])
    share = held_out_share(curve["memorization"], *sizes)
    curve = curve.assign(
        **{
            "L / H": curve["L"] / curve["H"],
            "held_out_share": share,
            "share_ratio": share / share_under_p_star,
            "held_out_mass": held_out_mass(
                curve["memorization"], curve["neg_log_mass"], *sizes
            ),
        }
    )
    if validation is not None:
        other = terms(history, validation)
        mass = pd.Series(np.exp(-other["neg_log_mass"]).to_numpy(), other["update"])
        curve["validation_mass"] = curve["update"].map(mass)
    return curve


def exact_figures(model, tokenizer, task: Task, share_under_p_star: float) -> dict:
    """What :func:`run_curve` reads from a monitor, measured now on ``model``: the exact
    ``L / H``, ``KL``, ``neg_log_mass`` and memorization ratio of the evaluation
    ``task``, the held-out names' share, its ratio to ``p*``'s and their mass."""
    import torch

    from .diagnostics import task_diagnostics

    with torch.no_grad():
        row = task_diagnostics(model, tokenizer, task)
    sizes = len(task.targets), len(task.metadata["held_out"])
    share = float(held_out_share(row["memorization"], *sizes))
    mass = held_out_mass(row["memorization"], row["neg_log_mass"], *sizes)
    return {
        **row,
        "L / H": row["L"] / row["H"],
        "held_out_share": share,
        "share_ratio": share / share_under_p_star,
        "held_out_mass": float(mass),
    }


def memorization_at(curve: pd.DataFrame, level: float) -> float:
    """The memorization ratio where ``L / H`` first falls to ``level`` along ``curve``
    (a :func:`run_curve` frame), interpolated between the measurements around it;
    NaN if it never does. Example: ``L / H`` 3, 2, 1 with memorization 0.8, 0.4, 0.1
    gives 0.6 at level 2.5."""
    ratio, memorization = curve["L / H"].to_numpy(), curve["memorization"].to_numpy()
    below = np.nonzero(ratio <= level)[0]
    if len(below) == 0:
        return float("nan")
    k = below[0]
    if k == 0:
        return float(memorization[0])
    return float(np.interp(level, ratio[[k, k - 1]], memorization[[k, k - 1]]))


def validation_stop(curve: pd.DataFrame, column: str = "held_out_mass", patience=2):
    """Early stopping on a validation measure: ``{'best': u, 'stopped': v}``, where
    ``u`` is the update of the largest ``column`` seen before ``patience`` measurements
    in a row failed to exceed it, and ``v`` the update where that happened (``None``
    when the run ended first; ``u`` is then its best). The model kept is the one at
    ``u``. Example: values 1, 3, 2, 2.5, 4 at updates 0, 5, ..., 20 with patience 2
    give ``{'best': 5, 'stopped': 15}``."""
    if patience < 1:
        raise ValueError(f"patience must be at least 1, got {patience}")
    best, stalls = None, 0
    for update, value in zip(curve["update"], curve[column]):
        if best is None or value > best[1]:
            best, stalls = (int(update), float(value)), 0
            continue
        stalls += 1
        if stalls == patience:
            return {"best": best[0], "stopped": int(update)}
    if best is None:
        raise ValueError("the curve has no measured updates")
    return {"best": best[0], "stopped": None}


def generation_figures(
    texts, canonical, targets, held_out, p_star, prompt="", evaluation=None
):
    """Sampled figures of BABYNAMES generations: ``answer_figures``' valid rate,
    entropy and coverage over valid names, ``outside_share`` (valid names not in
    ``targets``: the paper's measure, for a fixed list), ``sampled_share`` (valid names
    in ``held_out``), its standard error ``sampled_share_se``, and ``sampled_ratio``:
    that share over its value under ``p_star`` (``sum_H p*``; 1 treats unseen names as
    ``p*`` does); with ``evaluation`` (the names of an evaluation set),
    ``sampled_e_ratio``: the share of valid names in it over its ``p*`` mass."""
    from .answers import text_figures

    figures = text_figures(texts, canonical, targets, prompt)
    valid, held = figures.pop("answers"), set(held_out)
    figures.pop("rejected")
    share = float(np.mean([v in held for v in valid])) if valid else np.nan
    expected = float(p_star.reindex(list(held), fill_value=0.0).sum() / p_star.sum())
    se = np.sqrt(share * (1 - share) / len(valid)) if valid else np.nan
    if evaluation is not None:
        names = set(evaluation)
        inside = float(np.mean([v in names for v in valid])) if valid else np.nan
        mass = p_star.reindex(list(names), fill_value=0.0).sum() / p_star.sum()
        figures["sampled_e_ratio"] = inside / float(mass)
    return {
        **figures,
        "sampled_share": share,
        "sampled_share_se": float(se),
        "sampled_ratio": share / expected,
    }


def verdict(table: pd.DataFrame, baseline: str) -> dict:
    """The chapter's verdict, computed. ``table``: one row per run and stopping point,
    indexed by label, with ``share_ratio`` (the held-out names' exact share over
    ``p*``'s), ``valid_rate``, ``outside_share`` (sampled; NaN where the list is not
    fixed), ``knowledge_change`` (points against the base model) and ``fixed_list``;
    ``baseline``: the row of the paper's method (the fixed list at its early stop).

    ``best``: the row other than ``baseline`` whose ``share_ratio`` is nearest 1 by
    factor (``|log r|``), among those whose valid rate is at least the baseline's and
    that are nearer than it (None if no row is); ``nearest``: the same at any valid
    rate; ``majority``: the other fixed-list rows with more than half of their valid
    names outside the targets; ``sentence``: these, in words, with their numbers."""
    rows, base = table.drop(index=baseline), table.loc[baseline]
    distance = np.abs(np.log(table["share_ratio"].astype(float)))
    eligible = rows[
        (rows["valid_rate"] >= base["valid_rate"])
        & (distance[rows.index] < distance[baseline])
    ]
    best = None if eligible.empty else distance[eligible.index].idxmin()
    nearest = distance[rows.index].idxmin()
    fixed = rows[rows["fixed_list"].astype(bool)]
    majority = list(fixed.index[fixed["outside_share"] > 0.5])
    paper = (
        f"the fixed list at its early stop: {base['share_ratio']:.2f} of p*'s share, "
        f"valid rate {base['valid_rate']:.2f}, {base['outside_share']:.2f} of valid "
        f"names outside the list, knowledge {base['knowledge_change']:+.0f} points"
    )
    if best is None:
        near = table.loc[nearest]
        first = (
            "No remedy brings the held-out names' exact share nearer p*'s at a valid "
            f"rate no lower than the paper's method ({paper}). At any valid rate, "
            f"the nearest is {nearest}: {near['share_ratio']:.2f} of p*'s share at "
            f"a valid rate of {near['valid_rate']:.2f}."
        )
    else:
        row = table.loc[best]
        first = (
            f"Nearest p*: {best}, with the held-out names at {row['share_ratio']:.2f} "
            f"of p*'s share at a valid rate of {row['valid_rate']:.2f} and the "
            f"knowledge probe {row['knowledge_change']:+.0f} points against the base "
            f"model ({paper})."
        )
    if majority:
        second = "Fixed-list remedies with a majority of valid names outside the "
        second += f"targets: {'; '.join(majority)}."
    elif fixed.empty:
        second = "No fixed-list remedy ran."
    else:
        top = fixed["outside_share"].idxmax()
        second = (
            "No fixed-list remedy reaches a majority of valid names outside the "
            f"targets (at most {fixed.loc[top, 'outside_share']:.2f}, {top})."
        )
    return {
        "best": best,
        "nearest": nearest,
        "majority": majority,
        "sentence": f"{first} {second}",
    }
