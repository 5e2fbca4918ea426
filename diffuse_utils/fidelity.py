"""How the book trains, beside how the paper says it trained and how its released code
trains.

The paper states a few settings (LoRA r = 4 on q,k,v,o,gate,up,down; AdamW, lr 5e-5,
batch 32, up to 50 passes, early stop at gamma = 0.2). Its public release fixes the
rest: one AdamW update per prompt, eps 1e-5, clipping 1.0, PEFT's default alpha and
dropout, fp32, the six-task adapter with no early stop, Tuned-ID continuing it.
:class:`~diffuse_utils.schedule.TuneSettings`' defaults are the release's; this module
lays any run's settings beside them, read from the profiles the chapters tune with
(``profiles.yaml``), so the table cannot drift from the code.

Example::

    columns = profile_columns("six tasks")
    settings_table(columns, "six tasks")  # one row per setting
    why_ours_differs(columns, "six tasks")  # a list: the rows that differ, and why
"""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from .profiles import entry, run
from .schedule import TuneSettings

ROWS = {
    "update_per": "one AdamW update per",
    "passes": "passes",
    "lr": "learning rate",
    "adam_eps": "AdamW eps",
    "weight_decay": "AdamW weight decay",
    "max_grad_norm": "gradient clipping",
    "lora_rank": "LoRA rank",
    "lora_alpha": "LoRA alpha",
    "lora_dropout": "LoRA dropout",
    "target_modules": "LoRA modules",
    "tasks_per_step": "(task, prompt) pairs per pass",
    "targets_per_step": "targets per update",
    "early_stop_gamma": "early stop gamma",
    "start": "starts from",
    "dtype": "precision",
}
# What the paper's text says (Section 3, Appendix A); None where it is silent.
PAPER_STATED = {
    "passes": "up to 50",
    "lr": 5e-5,
    "lora_rank": 4,
    "target_modules": "q, k, v, o, gate, up, down",
    "targets_per_step": "batch 32",
    "early_stop_gamma": 0.2,
}
# Why a run of the book may differ from the release, per setting (shown only where one
# does).
WHY = {
    "update_per": (
        "one update per pass over a sample of pairs fits a CPU budget; the "
        "release makes one per prompt"
    ),
    "passes": "a CPU budget",
    "lr": (
        "at 5e-5 the 135M model moves too little in a CPU budget (chapter 3 runs "
        "both rates side by side)"
    ),
    "tasks_per_step": (
        "a random subset of (task, prompt) pairs per pass: an unbiased estimate "
        "of the loss, cheaper"
    ),
    "targets_per_step": (
        "targets drawn from p* (an unbiased estimate) instead of all of them: "
        "cheaper per update"
    ),
    "early_stop_gamma": (
        "the book stops where the paper's text says; the release config may not"
    ),
    "start": "the book shows both starts (chapter 5)",
    "dtype": (
        "bf16 halves GPU memory; LoRA updates at lr 5e-5 can round away in bf16, "
        "so tuning chapters use fp32"
    ),
}
# The release's scope-specific choices (configs/all, configs/baby-names,
# configs/fictitious-people).
RELEASE_SCOPES = {
    "RNG": {"early_stop_gamma": None},
    "BABYNAMES": {"early_stop_gamma": 0.2},
    "six tasks": {"early_stop_gamma": None},
    "Tuned-ID": {"early_stop_gamma": 0.2, "start": "six tasks"},
}
# Each scope's shared run (diffuse_utils/profiles.yaml) and the profiles shown beside
# the release.
SCOPE_RUNS = {
    "RNG": "rng",
    "BABYNAMES": "babynames",
    "six tasks": "six_tasks",
    "Tuned-ID": "tuned_id",
}
PROFILE_COLUMNS = {"CPU (profile default)": "default", "GPU (profile gpu)": "gpu"}


# torch's precisions under the short names of the release's configs and the table
SHORT_DTYPES = {
    "torch.float32": "fp32",
    "torch.bfloat16": "bf16",
    "torch.float16": "fp16",
}


def scope_column(
    settings: TuneSettings, start: str = "fresh adapter", dtype="fp32"
) -> dict:
    """A run's settings as a column of :func:`settings_table`: its
    :class:`TuneSettings`, the adapter it starts from and the precision it tunes in:
    a short name or the loaded model's ``torch.dtype`` (shown as "fp32", "bf16").
    Example: ``scope_column(tuning, dtype=model.dtype)["dtype"]`` is "fp32" on a CPU.
    """
    if dtype == "auto":
        raise ValueError(
            "dtype 'auto' names no precision: pass the loaded model's dtype "
            "(model.dtype), which is what the run tunes in"
        )
    shown = SHORT_DTYPES.get(str(dtype), str(dtype))
    return {**asdict(settings), "start": start, "dtype": shown}


def profile_columns(scope: str) -> dict:
    """The columns of ``scope``'s shared run in each profile of ``PROFILE_COLUMNS``: how
    the CPU book and the GPU params files train it (tuning chapters run in fp32 on
    both)."""
    name = SCOPE_RUNS[scope]
    columns = {}
    for label, profile in PROFILE_COLUMNS.items():
        starts = entry(name, profile).get("starts", ["fresh adapter"])
        columns[label] = scope_column(run(name, profile), " and ".join(starts))
    return columns


def release_column(scope: str) -> dict:
    """The release's settings for ``scope``."""
    return {
        **asdict(TuneSettings()),
        "start": "fresh adapter",
        "dtype": "fp32",
        **RELEASE_SCOPES[scope],
    }


def settings_table(columns: dict[str, dict], scope: str) -> pd.DataFrame:
    """One row per setting; the paper's text, the release, then ``columns`` (name ->
    settings dict, e.g. from :func:`scope_column`). Each value is a short string that
    can wrap (module lists are comma-and-space separated), so the table fits the text
    column; why a column differs from the release is :func:`why_ours_differs`."""
    table = {
        "paper (text)": {k: PAPER_STATED.get(k, "not stated") for k in ROWS},
        "release (code)": release_column(scope),
        **columns,
    }
    frame = pd.DataFrame(
        {
            name: {ROWS[k]: _show(values.get(k), k) for k in ROWS}
            for name, values in table.items()
        }
    )
    return frame.rename_axis(f"{scope}: setting")


def differences(columns: dict[str, dict], scope: str) -> pd.DataFrame:
    """The settings where one of ``columns`` differs from the release: one row each
    (labelled as in :func:`settings_table`), with the columns that differ
    (``"differs in"``) and the reason from :data:`WHY` (``"why"``)."""
    frame = settings_table(columns, scope)
    release = frame["release (code)"]
    rows = {
        ROWS[k]: {
            "differs in": " and ".join(
                name for name in columns if frame.loc[ROWS[k], name] != release[ROWS[k]]
            ),
            "why": WHY.get(k, ""),
        }
        for k in ROWS
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    return table[table["differs in"] != ""].rename_axis(f"{scope}: setting")


def why_ours_differs(columns: dict[str, dict], scope: str):
    """:func:`differences` as a Markdown list, each reason in full (a table column
    would cut it at 50 characters), for Jupyter, Colab and the book.
    Example: ``- **learning rate**, in this run and CPU (profile default): at 5e-5``.
    """
    from IPython.display import Markdown

    found = differences(columns, scope)
    lines = [
        f"- **{setting}**, in {row['differs in']}: {row['why'] or 'see the table'}"
        for setting, row in found.iterrows()
    ]
    return Markdown(
        f"{scope}, where ours differs from the release:\n\n" + "\n".join(lines)
        if lines
        else f"{scope}: every setting is the release's."
    )


# What a setting left at None means, where "none" would read wrongly ("no targets")
NONE_MEANS = {"tasks_per_step": "all", "targets_per_step": "all"}


def _show(value, setting: str = "") -> str:
    if isinstance(value, (tuple, list)):
        return ", ".join(str(v).removesuffix("_proj") for v in value)
    return NONE_MEANS.get(setting, "none") if value is None else str(value)
