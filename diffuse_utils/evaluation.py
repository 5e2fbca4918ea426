"""Evaluating a model on task families, and the leave-one-out experiment of Section 5.

Each sub-task is evaluated on its *held-out* phrasings: ``n_samples`` generations per
prompt, parsed from braces and checked against the family's valid answers, plus the
exact distribution over the targets where they are enumerable. Figures are per prompt;
the paper reports their mean over a task's prompts.

Example::

    suite = load_suite(["numbers", "fruits"])
    frame = evaluate_family(model, tokenizer, suite[0], label="base", output_dir="artifacts", n_samples=100)
    frame.groupby("family")[["entropy", "coverage", "valid_rate"]].mean()
"""
from __future__ import annotations

import time
from functools import partial

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .artifacts import adapter_fingerprint, cached_tune, model_id, save_prefix, saved_prefix
from .metrics import coverage, sample_entropy
from .sampling import DECODING, braced_spans, parse_braces, sample_prompts
from .scoring import score_prompts
from .suite import TaskFamily, held_out_task, normalize_answer


def cached_samples(output_dir, model, tokenizer, label: str, prompt: str, n: int, seed: int = 0,
                   max_new_tokens: int = 16, batch_size: int = 100, progress: bool = True,
                   temperature: float = 1.0, top_p: float = 1.0, min_p: float | None = None,
                   response_prefix: str = "") -> list[str]:
    """``n`` generations of ``prompt``, cached: see :func:`cached_samples_timed`."""
    return cached_samples_timed(output_dir, model, tokenizer, label, prompt, n, seed, max_new_tokens, batch_size,
                                progress, temperature, top_p, min_p, response_prefix)[0]


def cached_samples_timed(output_dir, model, tokenizer, label: str, prompt: str, n: int, seed: int = 0,
                         max_new_tokens: int = 16, batch_size: int = 100, progress: bool = True,
                         temperature: float = 1.0, top_p: float = 1.0, min_p: float | None = None,
                         response_prefix: str = ""):
    """``(texts, seconds)``: ``n`` generations of ``prompt``, saved as JSON under ``output_dir`` and
    reused while the model, its adapter weights, the prompt and the settings are the same;
    ``seconds`` is how long sampling took when it ran.
    ``label`` names the file (e.g. ``'base'``, ``'ID'``) but is not part of the key: the same
    settings under another label, or a larger ``n`` (whose first ``n`` samples are these), are
    served from the cache. temperature, top_p, min_p: the decoding; response_prefix: text
    pre-filled in the answer (part of the key only when not the plain default)."""
    return cached_samples_many(output_dir, model, tokenizer, label, [prompt], [n], seed, max_new_tokens, batch_size,
                               progress, temperature, top_p, min_p, response_prefix)[0]


def cached_samples_many(output_dir, model, tokenizer, label: str, prompts: list[str], counts: list[int], seed: int = 0,
                        max_new_tokens: int = 16, batch_size: int = 100, progress: bool = True,
                        temperature: float = 1.0, top_p: float = 1.0, min_p: float | None = None,
                        response_prefix: str = "") -> list[tuple[list[str], float]]:
    """:func:`cached_samples_timed` for several prompts, ``counts[k]`` generations of ``prompts[k]``:
    those not cached (``artifacts.saved_prefix``: a larger draw under any label serves its start)
    are drawn together (``sampling.sample_prompts``: rows of several prompts share a batch, which
    pays when counts are below ``batch_size``) and saved one file per prompt, each with its share
    of the time by number of samples. Returns ``(texts, seconds)`` per prompt."""
    options = _decoding_options(temperature, top_p, min_p, response_prefix)
    keys = [_samples_key(model, prompt, seed, max_new_tokens, options) for prompt in prompts]
    found = [saved_prefix(output_dir, n, **key) for n, key in zip(counts, keys)]
    missing = [k for k, hit in enumerate(found) if hit is None]
    if missing:
        start = time.perf_counter()
        drawn = sample_prompts(model, tokenizer, [prompts[k] for k in missing], [counts[k] for k in missing],
                               seed=seed, max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress,
                               **options)
        seconds = time.perf_counter() - start
        total = sum(counts[k] for k in missing)
        for k, texts in zip(missing, drawn):
            found[k] = (texts, seconds * counts[k] / total)
            save_prefix(output_dir, label, texts, found[k][1], **keys[k])
    return found


def _decoding_options(temperature, top_p, min_p, response_prefix) -> dict:
    """The decoding settings that differ from the plain default (only those enter cache keys, so
    keys made before a setting existed still match)."""
    defaults = {"temperature": 1.0, "top_p": 1.0, "min_p": None, "response_prefix": ""}
    return {k: v for k, v in (("temperature", temperature), ("top_p", top_p), ("min_p", min_p),
                              ("response_prefix", response_prefix)) if v != defaults[k]}


def _samples_key(model, prompt: str, seed: int, max_new_tokens: int, options: dict) -> dict:
    """What determines a prompt's generations: the cache key of :func:`cached_samples_timed`."""
    return dict(model=model_id(model), adapter=adapter_fingerprint(model), prompt=prompt, seed=seed,
                max_new_tokens=max_new_tokens, dtype=str(model.dtype), decoding=DECODING, **options)


def answer_figures(family: TaskFamily, subtask: str, texts: list[str], prompt: str = "") -> dict:
    """:func:`diversity_figures` of one prompt's generations for a family's sub-task."""
    return diversity_figures([parse_braces(t) for t in texts], partial(family.canonical, subtask),
                             set(family.subtask(subtask).targets), prompt)


def diversity_figures(parsed: list, canonical, targets: set, prompt: str = "") -> dict:
    """Diversity of answers, junk excluded.

    parsed: the answers (``None`` where nothing parsed); canonical: answer -> valid form or None.
    valid_rate: share of answers that are valid (echoing the prompt's format example, e.g.
    ``{name}``, is not an answer even where "Name" is a name); entropy, coverage: over valid
    answers (canonical form); outside_share: share of valid answers that are not tuning
    targets (generalization beyond the list); *_parsed: over everything parsed; answers,
    rejected: the valid answers, and the parsed answers that were not valid.
    """
    placeholders = {normalize_answer(p) for p in braced_spans(prompt)}
    valid = [None if a is None or normalize_answer(a) in placeholders else canonical(a) for a in parsed]
    kept = [v for v in valid if v is not None]
    got = [a for a in parsed if a is not None]
    rejected = [a for a, v in zip(parsed, valid) if a is not None and v is None]
    return {"n": len(parsed), "valid_rate": len(kept) / len(parsed), "entropy": sample_entropy(kept),
            "coverage": coverage(kept),
            "outside_share": float(np.mean([v not in targets for v in kept])) if kept else np.nan,
            "entropy_parsed": sample_entropy(got), "coverage_parsed": coverage(got), "answers": kept,
            "rejected": rejected}


def evaluate_family(model, tokenizer, family: TaskFamily, label: str, output_dir, n_samples: int = 100,
                    seed: int = 0, max_new_tokens: int = 16, batch_size: int = 100, exact: bool = True,
                    progress: bool = True) -> pd.DataFrame:
    """One row per (sub-task, held-out prompt): sampled figures (:func:`answer_figures`) and,
    for enumerable sub-tasks, the exact ``exact_entropy``, ``exact_kl`` (uniform ``p*`` vs the
    model's distribution renormalized over targets) and ``valid_mass``."""
    rows = []
    prompts = [(task, index, prompt) for task in family.subtasks
               for index, prompt in enumerate(task.metadata["held_out_prompts"])]
    scores = {task.name: score_prompts(model, tokenizer, held_out_task(task))
              for task in family.subtasks if exact and task.metadata.get("enumerable")}
    for task, index, prompt in tqdm(prompts, desc=f"{label}: {family.name}", unit="prompt", disable=not progress):
        texts, seconds = cached_samples_timed(output_dir, model, tokenizer, label, prompt, n_samples, seed,
                                              max_new_tokens, batch_size, progress=False)
        row = {"family": family.name, "subtask": task.name, "prompt": index,
               **answer_figures(family, task.name, texts, prompt), "sample_seconds": seconds}
        if task.name in scores:
            exact_row = scores[task.name].loc[index]
            row.update(exact_entropy=exact_row["entropy"], exact_kl=exact_row["kl"],
                       valid_mass=exact_row["valid_mass"])
        rows.append(row)
    return pd.DataFrame(rows)


def evaluate_suite(model, tokenizer, families: list[TaskFamily], label: str, output_dir, **evaluation) -> pd.DataFrame:
    """:func:`evaluate_family` for each family, stacked, with a ``run`` column set to ``label``."""
    return pd.concat([evaluate_family(model, tokenizer, family, label, output_dir, **evaluation)
                      for family in families], ignore_index=True).assign(run=label)


def training_tasks(families: list[TaskFamily]) -> list:
    """Every sub-task of ``families``, with its training prompts: what tuning sees."""
    return [task for family in families for task in family.subtasks]


def leave_one_out_plan(families: list[TaskFamily]) -> dict[str, list[TaskFamily]]:
    """Runs of Section 5: ``'ID'`` tunes on every family, ``'OOD-<name>'`` on all but ``<name>``."""
    if len(families) < 2:
        raise ValueError("leave-one-out needs at least two task families; "
                         f"got {[f.name for f in families]}")
    plan = {"ID": list(families)}
    plan.update({f"OOD-{held.name}": [f for f in families if f is not held] for held in families})
    return plan


def suite_adapter(output_dir, model, tokenizer, families: list[TaskFamily], settings=None, progress: bool = True,
                  **overrides):
    """The adapter tuned on ``families`` with ``settings`` (a :class:`~diffuse_utils.tuning.TuneSettings`,
    default the release's, with ``overrides``): loaded if one with the same configuration is saved
    under ``output_dir``, else tuned and saved. Notebook 04 makes its ID and OOD adapters this way;
    notebooks 05 and 06 reuse the ID one."""
    return cached_tune(output_dir, model, tokenizer, training_tasks(families), settings, progress=progress,
                       **overrides)


def family_means(frame: pd.DataFrame, columns=("entropy", "coverage", "valid_rate")) -> pd.DataFrame:
    """The paper's per-task figures: the mean over a family's prompts (and sub-tasks)."""
    present = [c for c in columns if c in frame]
    return frame.groupby(["run", "family"], sort=False)[present].mean().reset_index()
