"""The Performance page's tables and sentences, read from the files under
``benchmarks/``: ``results.json`` (``benchmarks/run.py``), ``gpu_check.json``
(``scripts/gpu_check.py``) and ``book_timings.json`` (``benchmarks/record_book.py``).

- :func:`step_summary`: one tuning step, each method's time, tokens and memory per task;
- :func:`sampling_table` and :func:`ceiling_verdict`: the sampler against its bound;
- :func:`llama_cpp_table` and :func:`llama_cpp_finding`: the sampler against llama.cpp;
- :func:`gpu_findings`: the GPU check in sentences;
- :func:`book_run_notes`: the recorded from-scratch runs of the book in sentences;
- :func:`profile_comparison_table` and :func:`leave_one_out_comparison`: what chapters
  conclude in the default profile and in the full one (``profile_comparison.json``).

Example::

    results = json.loads(Path("benchmarks/results.json").read_text())
    step_summary(pd.DataFrame(results["tuning_step"])).loc[:, "speed-up"]
    ceiling_verdict(1.6, 2.4)
    # 'even a step that did nothing but its matrix products would not double it on
    #  short answers'
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pandas as pd

# the columns of the sampling table, in the order the page shows them
SAMPLING_COLUMNS = [
    "earlier_samples_per_s",
    "package_samples_per_s",
    "speed_up",
    "earlier_tokens_per_s",
    "package_tokens_per_s",
    "matmul_bound_tokens_per_s",
    "share of the bound",
    "identical_texts_share",
]
DEFAULT_PARAMS = ("notebook defaults", "params/default.yaml")  # a default book's run
FULL_PARAMS = "params/full.yaml"  # a full-profile run


def _is_ci(run: dict) -> bool:
    return "ci_total_seconds" in run


def _is_full(run: dict) -> bool:
    return run["params"] == FULL_PARAMS


def _worst_prompt(steps: pd.DataFrame, naive: str, packed: str) -> pd.Series:
    """Per task, the largest absolute difference between the two methods' losses of one
    prompt (``prompt_losses``: one loss per prompt)."""
    worst = {}
    for task, group in steps.groupby("task"):
        losses = group.set_index("method")["prompt_losses"]
        worst[task] = max(abs(a - b) for a, b in zip(losses[naive], losses[packed]))
    return pd.Series(worst)


def step_summary(steps: pd.DataFrame) -> pd.DataFrame:
    """One row per task of ``steps`` (``results["tuning_step"]``: a row per task and
    method, the naive method first and the package's last): each method's seconds, the
    package's speed-up, tokens against the minimum (each prompt once, every distinct
    target prefix once), peak memory, and the loss difference between the naive path
    and the package (worst prompt, whole step).
    Example: naive 2 s and package 0.5 s on a task give a speed-up of 4.0."""
    naive, first, second, packed = list(dict.fromkeys(steps["method"]))
    table = steps.pivot(
        index="task",
        columns="method",
        values=["seconds", "tokens", "peak_rss_increase_mb", "loss"],
    )
    by_task = steps.groupby("task")
    minimum = by_task["minimum_tokens"].first()
    seconds, tokens = table["seconds"], table["tokens"]
    peak, loss = table["peak_rss_increase_mb"], table["loss"]
    summary = pd.DataFrame(
        {
            "naive s": seconds[naive],
            "version 1 s": seconds[first],
            "version 2 s": seconds[second],
            "package s": seconds[packed],
            "speed-up": seconds[naive] / seconds[packed],
            "naive tokens / minimum": tokens[naive] / minimum,
            "package tokens / minimum": tokens[packed] / minimum,
            "whole-sequence trie / minimum": by_task["sequence_trie_tokens"].first()
            / minimum,
            "naive peak MB": peak[naive],
            "package peak MB": peak[packed],
            "|loss difference|, worst prompt": _worst_prompt(steps, naive, packed),
            "|loss difference|, step": (loss[naive] - loss[packed]).abs(),
        }
    )
    return summary.loc[list(dict.fromkeys(steps["task"]))]


def sampling_table(cases: list[dict]) -> pd.DataFrame:
    """``results["sampling"]`` as a table, one row per case, with the package's share
    of the matrix-product bound (``package_tokens_per_s / matmul_bound_tokens_per_s``)
    and the columns of :data:`SAMPLING_COLUMNS`.
    Example: 400 tokens/s against a bound of 500 is a share of 0.8."""
    sampling = pd.DataFrame(cases).set_index("case")
    sampling["share of the bound"] = (
        sampling["package_tokens_per_s"] / sampling["matmul_bound_tokens_per_s"]
    )
    return sampling[SAMPLING_COLUMNS]


def llama_cpp_table(measured: dict | None) -> pd.DataFrame | None:
    """``results["llama_cpp"]`` (``benchmarks/llama_cpp_bench.py``) as a table, one row
    per sampler (named short: sequential, batch API, package): tokens and answers a
    second, tokens an answer, and the weights each computes on; ``None`` where
    llama.cpp was not measured (not installed)."""
    if not measured or "rows" not in measured:
        return None
    rows = pd.DataFrame(measured["rows"])
    package = rows["sampler"].str.startswith("package")
    rows["sampler"] = [
        "package, batched"
        if p
        else "llama.cpp, " + ("batched" if "batch" in n else "sequential")
        for n, p in zip(rows["sampler"], package)
    ]
    rows["weights"] = ["float32" if p else "Q4_1" for p in package]
    columns = {
        "tokens_per_s": "tokens/s",
        "answers_per_s": "answers/s",
        "tokens_per_answer": "tokens an answer",
    }
    return rows.set_index("sampler").rename(columns=columns)[
        [*columns.values(), "weights"]
    ]


def llama_cpp_finding(table: pd.DataFrame | None) -> str:
    """The package's tokens a second against each llama.cpp sampler's, as a sentence.
    Example: package 400 against 100 and 800 -> "... 4.00 times llama.cpp's sequential
    chat completions and 0.50 times its batch API"."""
    if table is None:
        return "llama.cpp was not measured here (llama-cpp-python is not installed)."
    speed = table["tokens/s"]
    package = speed["package, batched"]
    sequential, batched = speed["llama.cpp, sequential"], speed["llama.cpp, batched"]
    return (
        f"The package drew {package / sequential:.2f} times the tokens a second of "
        f"llama.cpp's sequential chat completions and {package / batched:.2f} times "
        "those of its batch API"
    )


def ceiling_verdict(short: float, biographies: float) -> str:
    """Whether a decoder that only ran its matrix products could double the earlier
    sampler's speed; ``short``, ``biographies``: the bound in earlier-sampler speeds.
    Example: ``ceiling_verdict(2.5, 3.0)`` -> ``"a step that did nothing but its matrix
    products could double it"``."""
    below = [
        k for k, v in (("short answers", short), ("biographies", biographies)) if v < 2
    ]
    if not below:
        return "a step that did nothing but its matrix products could double it"
    return (
        "even a step that did nothing but its matrix products would not double it on "
        + " or ".join(below)
    )


def gpu_findings(gpu: dict | None) -> dict[str, str]:
    """``gpu_status``, ``gpu_profile`` and ``gpu_attention`` of ``gpu_check.json``'s
    contents (``None``: not run), each a sentence or ``"not run yet"``.
    Example: ``gpu_findings(None)["gpu_profile"]`` -> ``"not run yet"``."""
    if gpu is None:
        status = "not run yet (no GPU has been lent to this project so far)"
        return dict(
            gpu_status=status, gpu_profile="not run yet", gpu_attention="not run yet"
        )
    said = {
        "gpu_status": f"run on {gpu['device']}; the paper's six-task 13B run would "
        f"take about {gpu['projected_paper_13b_run_minutes']:.0f} minutes there",
        "gpu_profile": "not run yet",
        "gpu_attention": "not run yet",
    }
    profile = gpu.get("tuning_profile")
    if profile:
        wall, kernels = (
            profile["wall_seconds_per_update"],
            profile["gpu_kernel_seconds_per_update"],
        )
        said["gpu_profile"] = (
            f"profiled with torch.profiler, a {profile['model']}-shaped update took "
            f"{1000 * wall:.0f} ms, of which GPU kernels ran {1000 * kernels:.0f} ms "
            f"({kernels / wall:.0%}); the profiler itself slows the host, so the "
            f"unprofiled updates above are the time to plan on"
        )
        said["gpu_attention"] = "; ".join(
            f"{shape}: {row['package (no cuDNN)']:.0f} ms an update as the package "
            f"runs it, {row['cuDNN allowed']:.0f} with cuDNN's attention allowed"
            for shape, row in pd.DataFrame(gpu["attention_ms_per_update"]).T.iterrows()
        )
    return said


def chapters_wall_seconds(
    seconds: dict, started: dict, invocation: dict | None = None
) -> float:
    """The wall time of chapters run side by side (``run_notebooks.py --jobs``): from
    the first start to the last end of each runner invocation, added up over the
    invocations (the time between them is not in it). ``seconds``: chapter -> seconds;
    ``started`` and ``invocation``: chapter -> ISO time (no ``invocation``: one run).
    Example: two chapters of 60 s, the second started 30 s after the first: 90 s."""
    runs = {}
    for chapter, spent in seconds.items():
        start = datetime.datetime.fromisoformat(started[chapter]).timestamp()
        run = runs.setdefault((invocation or {}).get(chapter), [start, start + spent])
        run[0], run[1] = min(run[0], start), max(run[1], start + spent)
    return round(sum(end - start for start, end in runs.values()), 1)


def build_minutes(timings: dict) -> tuple[float, str]:
    """The minutes a build's chapters took, from its ``timings.json`` (written by
    ``scripts/run_notebooks.py``), and how they ran: one at a time, the sum of their
    times; where the last run of several chapters ran them side by side (``jobs``), the
    wall time of that run's chapters (pages numbered 9x left out) and a clause that says
    so (else ""). Example: two chapters of 60 s, one at a time, give ``(2.0, "")``."""
    seconds, side = timings.get("seconds", {}), timings.get("jobs") or {}
    invocation = timings.get("invocation", {})
    chapters = [c for c in side if c in seconds and not c.startswith("9")]
    if not chapters:
        return sum(seconds.values()) / 60, ""
    last = max(invocation.get(c, "") for c in chapters)
    run = {c: seconds[c] for c in chapters if invocation.get(c, "") == last}
    wall = chapters_wall_seconds(run, timings["started"])
    jobs = max(side[c] for c in run)
    return wall / 60, f", {jobs} chapters at a time (each one's time beside another's)"


def _last(recorded: dict, keep) -> dict | None:
    """The last run of ``recorded`` (by label, in the file's order) that ``keep``s."""
    runs = [run for run in recorded.values() if keep(run)]
    return runs[-1] if runs else None


def _newer(recorded: dict, run: dict | None, than: dict | None) -> dict | None:
    """``run`` if it was recorded after ``than`` (in the file's order), else None: an
    older partial run is superseded by the complete one after it."""
    if run is None or than is None:
        return run
    order = [id(r) for r in recorded.values()]
    return run if order.index(id(run)) > order.index(id(than)) else None


def from_scratch_table(recorded: dict) -> pd.DataFrame:
    """The last from-scratch run of each kind in ``book_timings.json`` (label -> run):
    the default book (complete), the full profile (whole or in part) and CI. A row
    each, named by its kind, commit and date; minutes per chapter (``01``, ``02``,
    ...), all chapters (their wall time where they ran side by side), and the whole CI
    run."""
    kinds = {
        "default book": _last(
            recorded,
            lambda run: run["params"] in DEFAULT_PARAMS and not run.get("partial"),
        ),
        "full profile": _last(recorded, _is_full),
        "CI": _last(recorded, _is_ci),
    }
    runs = {
        f"{kind} ({run['commit']}, {run['date']}"
        + (f", {run['pieces']} pieces" if run.get("pieces") else "")
        + (f", {run['jobs']} chapters at a time" if run.get("jobs") else "")
        + (", partial" if run.get("partial") else "")
        + ")": run
        for kind, run in kinds.items()
        if run is not None
    }
    table = pd.DataFrame({k: r["chapter_seconds"] for k, r in runs.items()}).T / 60
    table = table.sort_index(axis=1)
    table.columns = [name[:2] for name in table]  # 01_measuring_bias: 01
    table["all chapters"] = table.sum(axis=1)  # side by side: first start to last end
    wall = {k: r["chapters_wall_seconds"] / 60 for k, r in runs.items() if "jobs" in r}
    table.loc[list(wall), "all chapters"] = pd.Series(wall, dtype=float)
    whole = {k: r.get("ci_total_seconds", float("nan")) for k, r in runs.items()}
    table["whole CI run"] = pd.Series(whole, dtype=float) / 60
    return table.rename_axis(columns="minutes")


def _partial_note(partial: dict | None) -> str:
    """A sentence on the last default run that stopped before the end ("" if none)."""
    if partial is None:
        return ""
    chapters = ", ".join(
        f"{name[:2]}: {s / 60:.0f}" for name, s in partial["chapter_seconds"].items()
    )
    return (
        f" A later run from scratch (commit {partial['commit']}, {partial['date']}) "
        f"stopped after {len(partial['chapter_seconds'])} notebooks, which took "
        f"{partial['chapters_total_seconds'] / 60:.0f} minutes ({chapters})."
    )


def _pieces_note(pieces: dict | None) -> str:
    """A sentence on the last complete default run taken in pieces ("" if none)."""
    if pieces is None:
        return ""
    return (
        f" Taken in {pieces['pieces']} pieces (runner invocations, in book order; "
        f"commit {pieces['commit']}, {pieces['date']}), its chapters add up to "
        f"{pieces['chapters_total_seconds'] / 60:.0f} minutes."
    )


def book_run_notes(recorded: dict) -> dict:
    """What the page says of ``book_timings.json``'s runs (label -> run): the last
    complete default book in one piece (``default_book_when``, ``_minutes``,
    ``_caveat``), the last partial one and the last one in pieces (notes, "" when
    there is none) and the last CI run's minutes (NaN when there is none).
    Example: a default run of 2400 chapter seconds gives ``default_book_minutes`` 40."""
    default = {k: run for k, run in recorded.items() if run["params"] in DEFAULT_PARAMS}
    last = _last(default, lambda run: not run.get("partial") and not run.get("pieces"))
    ci = _last(recorded, _is_ci)
    before_7 = last and "07_what_it_takes" not in last["chapter_seconds"]
    pieced = _last(default, lambda run: run.get("pieces") and not run.get("partial"))
    return {
        "default_book_when": f"commit {last['commit']}, {last['date']}"
        if last
        else "none",
        "default_book_caveat": ", before chapter 7 existed" if before_7 else "",
        "default_book_minutes": last["chapters_total_seconds"] / 60
        if last
        else float("nan"),
        "partial_note": _partial_note(
            _newer(recorded, _last(default, lambda run: run.get("partial")), last)
        ),
        "pieces_note": _pieces_note(_newer(recorded, pieced, last)),
        "ci_minutes": ci["ci_total_seconds"] / 60 if ci else float("nan"),
        "recorded_full": _full_note(_last(recorded, _is_full), last),
    }


def _full_note(full: dict | None, default: dict | None) -> str:
    """A sentence on the last run of the full profile, whole or in part: the chapters
    of the ``default`` run that it lacks are named."""
    if full is None:
        return "The full profile (params/full.yaml) has no recorded run yet."
    seconds = full["chapter_seconds"]
    chapters = ", ".join(f"{name[:2]}: {s / 60:.0f}" for name, s in seconds.items())
    book = default["chapter_seconds"] if default else {}
    missing = [name[:2] for name in book if name not in seconds]
    pieces = f" in {full['pieces']} pieces" if full.get("pieces") else ""
    names = ", ".join(name[:2] for name in seconds)
    return (
        f"The full profile (params/full.yaml), from scratch{pieces} (commit "
        f"{full['commit']}, {full['date']}): chapters {names} "
        f"took {full['chapters_total_seconds'] / 60:.0f} minutes ({chapters})"
        + (f"; chapters {', '.join(missing)} not yet recorded." if missing else ".")
    )


def page_label(stem: str) -> str:
    """A notebook's stem in words: ``"04_leave_one_out"`` -> ``"chapter 4"``; the pages
    numbered 90 and up are the reference pages, named by their title word
    (``"90_performance"`` -> ``"performance page"``)."""
    number, _, name = stem.partition("_")
    if int(number) < 90:
        return f"chapter {int(number)}"
    return f"{name.replace('_', ' ')} page"


COMPARISON_FILE = "benchmarks/profile_comparison.json"  # benchmarks/compare_profiles.py


def recorded_values(chapter: str, profile: str = "full", path=COMPARISON_FILE) -> dict:
    """The values ``chapter`` glued in ``profile``'s recorded run, as
    ``benchmarks/compare_profiles.py`` kept them (name -> text); empty where the file
    or the chapter is not there (a copy of the notebook alone, as on Colab).
    Example: ``recorded_values("07_what_it_takes").get("suite_verdict")``."""
    found = Path(path)
    compared = json.loads(found.read_text()) if found.exists() else {}
    return compared.get(chapter, {}).get(profile, {})


def profile_comparison_table(compared: dict) -> pd.DataFrame | None:
    """``profile_comparison.json`` (``benchmarks/compare_profiles.py``) as a table: a
    row per chapter and value (in words), the default profile's value beside the full
    one's; None when no chapter has run in both."""
    rows = [
        {
            "chapter": page_label(chapter),
            "value": label,
            "default": _shown(pair["default"].get(name)),
            "full": _shown(pair["full"].get(name)),
        }
        for chapter, pair in compared.items()
        for name, label in pair["labels"].items()
    ]
    return pd.DataFrame(rows).set_index(["chapter", "value"]) if rows else None


def _shown(text: str | None) -> str | None:
    """A glued value as the table shows it: a number to 3 decimals, without trailing
    zeros (16.2, not 16.200; 8, not 8.000), one under 0.0005 to 2 significant digits;
    anything else as it is."""
    try:
        number = float(text)
    except (TypeError, ValueError):
        return text
    shown = f"{number:.3f}".rstrip("0").rstrip(".")
    return shown if float(shown) or not number else f"{number:.2g}"


def leave_one_out_comparison(compared: dict) -> str:
    """Chapter 4's two comparisons (OOD against the base model, ID against OOD) in both
    profiles, as a sentence; says so when chapter 4 has not run in both."""
    pair = compared.get("04_leave_one_out")
    if pair is None:
        return "chapter 4 has not been run in both profiles"
    d, f = pair["default"], pair["full"]
    return (
        f"with {d['passes_glue']} passes and {d['n_samples']} generations a prompt "
        f"(default) and {f['passes_glue']} and {f['n_samples']} (full), OOD's entropy "
        f"beats the base model's on {d['ood_wins']} and {f['ood_wins']} of "
        f"{f['n_tasks']} families, and ID's beats OOD's on {d['id_wins']} and "
        f"{f['id_wins']}"
    )
