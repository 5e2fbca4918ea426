"""Expensive results saved under a folder keyed by their configuration, reused on re-run.

A key is a short hash of everything that determines the result (model, tasks,
hyper-parameters, seed). Writes go to a ``.partial`` folder renamed at the end,
so an interrupted run leaves nothing half-written and is simply redone.

Example::

    model, history = cached_tune("artifacts", model, tokenizer, [rng], passes=30, lr=5e-4)
    save_prefix("artifacts", "rng-base", texts, seconds, model="...", seed=0)
    saved_prefix("artifacts", 100, model="...", seed=0)      # the first 100 texts, and their share of the time
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from peft import PeftModel

from .schedule import tune_settings
from .tuning import load_adapter, save_adapter, tune


def config_key(**config) -> str:
    """12 hex digits identifying ``config`` (JSON-serializable values; order of keys ignored)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def model_id(model) -> str:
    """The name or path a model was loaded from (for cache keys)."""
    config = getattr(model, "config", None)
    return getattr(config, "_name_or_path", type(model).__name__)


def adapter_fingerprint(model) -> str:
    """``'base'`` for a plain model; for a PEFT model, 12 hex digits of a hash of its adapter
    weights. Cache keys of generations include it, so a changed adapter is never served
    the generations of an old one."""
    from peft import get_peft_model_state_dict
    if not isinstance(model, PeftModel):
        return "base"
    digest = hashlib.sha256()
    for name, tensor in sorted(get_peft_model_state_dict(model).items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:12]


def _publish(partial: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)


def cached_tune(output_dir, model, tokenizer, tasks, settings=None, *, also_save_gammas=(), monitor=None,
                progress: bool = True, tokens_per_pass: int | None = None, **overrides):
    """:func:`tune` unless an adapter with the same configuration is saved; then load it.

    The configuration is the model (and, when tuning continues a ``PeftModel``, its adapter's
    weights), the tasks and every field of the :class:`TuneSettings` (``settings`` with ``overrides``);
    ``tokens_per_pass``, ``progress`` and the monitor do not change the adapter. A saved run is
    reused by any caller, except one whose ``monitor`` asks for measurements its history lacks
    (then the run is repeated with the monitor, and gives the same adapter).
    Saves ``adapters/<names>-<key>/`` with the PEFT safetensors adapter, ``history.csv`` and
    ``config.json``. Returns ``(peft_model, history)`` either way.
    also_save_gammas: early-stop thresholds above ``early_stop_gamma``. The run passes each on
    its way, and a run stopping there is the same run up to that point, so the adapter it has
    there is saved under the key that threshold has: a sweep over thresholds tunes once.
    """
    settings = tune_settings(settings, **overrides)
    start_from = adapter_fingerprint(model)
    folder = _adapter_folder(output_dir, model, tasks, settings, start_from)
    if _saved_with(folder, monitor):
        history = pd.read_csv(folder / "history.csv")
        history.attrs["tune_seconds"] = json.loads((folder / "config.json").read_text()).get("tune_seconds")
        if isinstance(model, PeftModel):
            model = model.unload()  # the saved adapter already includes the one it started from
        return load_adapter(model, folder), history
    start = time.perf_counter()

    def save_passing(gamma, tuned, history):
        at_gamma = replace(settings, early_stop_gamma=gamma)
        _save_tuned(_adapter_folder(output_dir, model, tasks, at_gamma, start_from), tuned, history, tasks,
                    at_gamma, monitor, time.perf_counter() - start)
    extra = {} if tokens_per_pass is None else {"tokens_per_pass": tokens_per_pass}
    tuned, history = tune(model, tokenizer, tasks, settings, passing_gammas=also_save_gammas, on_passing=save_passing,
                          monitor=monitor, progress=progress, **extra)
    history.attrs["tune_seconds"] = time.perf_counter() - start
    _save_tuned(folder, tuned, history, tasks, settings, monitor, history.attrs["tune_seconds"])
    return tuned, history


def _saved_with(folder: Path, monitor) -> bool:
    """Whether ``folder`` holds a finished run whose history has what ``monitor`` measures."""
    if not (folder / "adapter_model.safetensors").exists():
        return False
    saved = json.loads((folder / "config.json").read_text()).get("monitor")
    return monitor is None or saved == json.loads(json.dumps(monitor.key(), default=str))


def _adapter_folder(output_dir, model, tasks, settings, start_from: str) -> Path:
    """Where :func:`cached_tune` keeps the adapter of this configuration."""
    extra = {} if start_from == "base" else {"continues": start_from}
    key = config_key(model=model_id(model), tasks=[t.to_dict() for t in tasks], **asdict(settings), **extra)
    return Path(output_dir) / "adapters" / f"{'+'.join(t.name for t in tasks)[:60]}-{key}"


def _save_tuned(folder: Path, tuned, history, tasks, settings, monitor, seconds: float) -> None:
    """Write the adapter, ``history.csv`` and ``config.json`` through a ``.partial`` folder."""
    partial = folder.with_name(folder.name + ".partial")
    save_adapter(tuned, partial)
    history.to_csv(partial / "history.csv", index=False)
    (partial / "config.json").write_text(json.dumps({"tasks": [t.name for t in tasks], **asdict(settings),
                                                     "monitor": None if monitor is None else monitor.key(),
                                                     "tune_seconds": seconds}, default=str))
    _publish(partial, folder)


def saved_prefix(output_dir, n: int, **config):
    """``(items, seconds)``: the first ``n`` items of a list saved by :func:`save_prefix` with this
    configuration and at least ``n`` items, under any name; ``None`` if there is none.

    For lists whose ``i``-th item does not depend on their length (like samples drawn from
    per-sample random numbers, see ``sampling.sample_uniforms``): chapter 6's 25 base-model
    samples of a prompt are the first 25 of chapter 4's 100. For a served prefix the seconds
    are prorated, ``n / len``."""
    key = config_key(**config)
    sizes = {candidate: candidate.stem.rsplit("-n", 1)[1]
             for candidate in (Path(output_dir) / "generations").glob(f"*-{key}-n*.json")}
    for size, candidate in sorted((int(size), candidate) for candidate, size in sizes.items() if size.isdigit()):
        if size >= n:
            stored = json.loads(candidate.read_text(encoding="utf-8"))
            seconds = stored.get("seconds")
            return stored["result"][:n], (None if seconds is None else seconds * n / size)
    return None


def save_prefix(output_dir, name: str, items: list, seconds: float, **config) -> None:
    """Save ``items`` and the ``seconds`` they took as ``generations/<name>-<key>-n<len>.json``,
    where the key leaves out ``name`` and the length, for :func:`saved_prefix` to serve."""
    _write_result(_prefix_path(output_dir, name, len(items), config), {**config, "n": len(items)}, items, seconds)


def _prefix_path(output_dir, name: str, n: int, config: dict) -> Path:
    return Path(output_dir) / "generations" / f"{name}-{config_key(**config)}-n{n}.json"


def _write_result(path: Path, config: dict, result, seconds: float) -> None:
    """Write ``{config, result, seconds}`` to ``path`` through a ``.partial`` file (an interrupted
    run leaves nothing half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"config": config, "result": result, "seconds": seconds}, ensure_ascii=False,
                                  default=str), encoding="utf-8")
    partial.rename(path)
