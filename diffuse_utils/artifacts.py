"""Expensive results saved under a folder keyed by their configuration, reused on
re-run: adapters (:func:`cached_tune`), generations (:func:`cached_generations`) and
measurements of a model (:func:`cached_measure`).

A key is a short hash of everything that determines the result (model, tasks,
hyper-parameters, seed), never of settings that only change speed or memory (batch
sizes, ``tokens_per_pass``). Writes go through a ``.partial`` name renamed at the end,
so an interrupted run leaves nothing half-written and is simply redone.

Example::

    model, history = cached_tune(
        "artifacts", model, tokenizer, [rng], passes=30, lr=5e-4
    )
    texts, seconds = cached_generations(
        "artifacts", model, tokenizer, [RNG_PROMPT], 100, label="base"
    )
    texts[0][:3], seconds[0]  # ['{7}', '{3}', '{7}'], the seconds the 100 took
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
from peft import PeftModel

from .adapters import load_adapter, save_adapter

# the keys are re-exported: artifacts.config_key, artifacts.model_id, ...
from .cache_keys import (  # noqa: F401
    adapter_fingerprint,
    config_key,
    model_id,
    partial_path,
    publish,
    write_result,
)
from .decoding import SampleSettings, sample_settings
from .sampling import DECODING, sample_prompts
from .schedule import tune_settings
from .tuning import tune


def cached_tune(
    output_dir,
    model,
    tokenizer,
    tasks,
    settings=None,
    *,
    also_save_gammas=(),
    monitor=None,
    progress: bool = True,
    tokens_per_pass: int | None = None,
    **overrides,
):
    """:func:`tune` unless an adapter with the same configuration is saved; then load
    it.

    The configuration is the model (and, when tuning continues a ``PeftModel``, its
    adapter's weights), the tasks and every field of the :class:`TuneSettings`
    (``settings`` with ``overrides``); ``tokens_per_pass``, ``progress`` and the monitor
    do not change the adapter. A saved run is reused by any caller, except one whose
    ``monitor`` asks for measurements its history lacks (then the run is repeated with
    the monitor, and gives the same adapter).
    Saves ``adapters/<names>-<key>/`` with the PEFT safetensors adapter, ``history.csv``
    and ``config.json``. Returns ``(peft_model, history)`` either way.
    also_save_gammas: early-stop thresholds above ``early_stop_gamma`` (any, when it
    is None: the run goes on past them). The run passes each on its way, and a run
    stopping there is the same run up to that point, so the adapter it has there is
    saved under the key that threshold has: a sweep over thresholds tunes once. A
    threshold the run never passes gets the run's last adapter (that run never stops).
    """
    settings = tune_settings(settings, **overrides)
    start_from = adapter_fingerprint(model)
    folder = _adapter_folder(output_dir, model, tasks, settings, start_from)
    if _saved_with(folder, monitor):
        if isinstance(model, PeftModel):
            # the saved adapter already includes the one it started from
            model = model.unload()
        return load_adapter(model, folder), _read_history(folder)
    start = time.perf_counter()
    passed = set()

    def save_passing(gamma, tuned, history):
        passed.add(gamma)
        at_gamma = replace(settings, early_stop_gamma=gamma)
        _save_tuned(
            _adapter_folder(output_dir, model, tasks, at_gamma, start_from),
            tuned,
            history,
            tasks,
            at_gamma,
            monitor,
            time.perf_counter() - start,
        )

    extra = {} if tokens_per_pass is None else {"tokens_per_pass": tokens_per_pass}
    tuned, history = tune(
        model,
        tokenizer,
        tasks,
        settings,
        passing_gammas=also_save_gammas,
        on_passing=save_passing,
        monitor=monitor,
        progress=progress,
        **extra,
    )
    history.attrs["tune_seconds"] = time.perf_counter() - start
    _save_tuned(
        folder, tuned, history, tasks, settings, monitor, history.attrs["tune_seconds"]
    )
    # A threshold the run never passed would have stopped no run (a run that stops early
    # has passed every looser threshold first): a run stopping there is this whole run.
    for gamma in sorted(set(also_save_gammas) - passed):
        save_passing(gamma, tuned, history)
    return tuned, history


def _saved_with(folder: Path, monitor) -> bool:
    """Whether ``folder`` holds a finished run whose history has what ``monitor``
    measures."""
    if not (folder / "adapter_model.safetensors").exists():
        return False
    saved = json.loads((folder / "config.json").read_text()).get("monitor")
    return monitor is None or saved == json.loads(
        json.dumps(monitor.key(), default=str)
    )


def _read_history(folder: Path) -> pd.DataFrame:
    """A saved run's history, its floats exactly as written, with ``tune_seconds``."""
    history = pd.read_csv(folder / "history.csv", float_precision="round_trip")
    history.attrs["tune_seconds"] = json.loads(
        (folder / "config.json").read_text()
    ).get("tune_seconds")
    return history


def _adapter_folder(output_dir, model, tasks, settings, start_from: str) -> Path:
    """Where :func:`cached_tune` keeps the adapter of this configuration."""
    extra = {} if start_from == "base" else {"continues": start_from}
    key = config_key(
        model=model_id(model),
        tasks=[t.to_dict() for t in tasks],
        **asdict(settings),
        **extra,
    )
    return (
        Path(output_dir) / "adapters" / f"{'+'.join(t.name for t in tasks)[:60]}-{key}"
    )


def _save_tuned(
    folder: Path, tuned, history, tasks, settings, monitor, seconds: float
) -> None:
    """Write the adapter, ``history.csv`` and ``config.json`` through a ``.partial``
    folder."""
    partial = partial_path(folder)
    save_adapter(tuned, partial)
    history.to_csv(partial / "history.csv", index=False)
    (partial / "config.json").write_text(
        json.dumps(
            {
                "tasks": [t.name for t in tasks],
                **asdict(settings),
                "monitor": None if monitor is None else monitor.key(),
                "tune_seconds": seconds,
            },
            default=str,
        )
    )
    publish(partial, folder)


def cached_generations(
    output_dir,
    model,
    tokenizer,
    prompts: list[str],
    n,
    settings: SampleSettings | None = None,
    *,
    label: str,
    batch_size: int = 100,
    progress: bool = True,
    **overrides,
):
    """``(texts, seconds)``, one entry per prompt: ``n`` generations of each prompt
    (``n`` a count, or one count per prompt) under ``settings`` (a
    :class:`SampleSettings`) with ``overrides`` replaced, and the seconds they took;
    saved under ``output_dir/generations`` and reused.

    The key is what determines the texts: the model, its adapter's weights
    (:func:`adapter_fingerprint`), the prompt, the dtype, the sampler's ``DECODING`` and
    :meth:`SampleSettings.key` (seed, ``max_new_tokens`` and the settings that differ
    from their defaults, so keys made before a setting existed still match). ``label``
    names the file (``base-<key>-n100.json``) but is not part of the key, and the first
    ``n`` of a larger draw are that draw's start (``sampling.sample_uniforms``): a
    larger draw under any label serves, its seconds prorated. Prompts not cached are
    drawn together (rows of several prompts share a batch) and saved one file per
    prompt, each with its share of the time by number of generations; ``batch_size`` and
    ``progress`` change the speed only.
    Example:
    ``cached_generations("artifacts", model, tok, [RNG_PROMPT], 100, label="base")``.
    """
    settings = sample_settings(settings, **overrides)
    counts = list(n) if isinstance(n, (list, tuple)) else [int(n)] * len(prompts)
    keys = [generation_key(model, prompt, settings) for prompt in prompts]
    found = [_saved_prefix(output_dir, count, key) for count, key in zip(counts, keys)]
    missing = [k for k, hit in enumerate(found) if hit is None]
    if missing:
        start = time.perf_counter()
        drawn = sample_prompts(
            model,
            tokenizer,
            [prompts[k] for k in missing],
            [counts[k] for k in missing],
            settings,
            batch_size=batch_size,
            progress=progress,
        )
        seconds, total = time.perf_counter() - start, sum(counts[k] for k in missing)
        folder = Path(output_dir) / "generations"
        for k, texts in zip(missing, drawn):
            found[k] = (texts, seconds * counts[k] / total)
            path = folder / f"{label}-{config_key(**keys[k])}-n{len(texts)}.json"
            write_result(path, {**keys[k], "n": len(texts)}, texts, found[k][1])
    return [texts for texts, _ in found], [seconds for _, seconds in found]


def generation_key(model, prompt: str, settings: SampleSettings) -> dict:
    """What determines the generations of ``model`` for ``prompt`` under
    ``settings``."""
    return dict(
        model=model_id(model),
        adapter=adapter_fingerprint(model),
        prompt=prompt,
        dtype=str(model.dtype),
        decoding=DECODING,
        **settings.key(),
    )


def _saved_prefix(output_dir, n: int, key: dict):
    """``(texts, seconds)``: the first ``n`` texts saved under ``key`` by a draw of at
    least ``n``, under any label, its seconds prorated (``n / len``); ``None`` if there
    is none."""
    sizes = {
        candidate: candidate.stem.rsplit("-n", 1)[1]
        for candidate in (Path(output_dir) / "generations").glob(
            f"*-{config_key(**key)}-n*.json"
        )
    }
    for size, candidate in sorted(
        (int(size), candidate) for candidate, size in sizes.items() if size.isdigit()
    ):
        if size >= n:
            stored = json.loads(candidate.read_text(encoding="utf-8"))
            seconds = stored.get("seconds")
            return stored["result"][:n], (
                None if seconds is None else seconds * n / size
            )
    return None


def cached_measure(output_dir, model, name: str, compute, **key):
    """``compute()`` (JSON-serializable), saved as ``measures/<name>-<key>.json`` under
    ``output_dir`` and reused while the model, its adapter's weights
    (:func:`adapter_fingerprint`), ``name`` and ``key`` are the same: a measurement of
    an adapter, like the utility probes or an exact probe.
    Example: ``cached_measure("artifacts", tuned, "utility", lambda:
    probe.measure(tuned, tok), **probe.key())``."""
    config = dict(
        model=model_id(model), adapter=adapter_fingerprint(model), name=name, **key
    )
    path = Path(output_dir) / "measures" / f"{name}-{config_key(**config)}.json"
    if not path.exists():
        start = time.perf_counter()
        result = compute()
        write_result(path, config, result, time.perf_counter() - start)
    return json.loads(path.read_text(encoding="utf-8"))["result"]


def saved_history(output_dir, model, tasks, settings=None, **overrides):
    """The history of the run :func:`cached_tune` saved under ``output_dir`` with this
    configuration, or ``None`` when there is none; nothing is tuned (e.g. to draw
    another chapter's runs beside one's own when they are there).
    Example: ``saved_history("artifacts", model, [names], passes=50, lr=5e-4)``."""
    settings = tune_settings(settings, **overrides)
    folder = _adapter_folder(
        output_dir, model, tasks, settings, adapter_fingerprint(model)
    )
    return _read_history(folder) if _saved_with(folder, None) else None
