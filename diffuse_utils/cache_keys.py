"""What names a cached result, and how it is written: a short hash of the settings that
determine it (:func:`config_key`), the model's name (:func:`model_id`) and its adapter's
weights (:func:`adapter_fingerprint`); results written whole or not at all, through a
``.partial`` name renamed at the end (:func:`write_result`, :func:`publish`), one per
process (:func:`partial_path`), so two chapters run side by side that write the same
result do not write into one file.

Example::

    config_key(lr=5e-4, passes=50) == config_key(passes=50, lr=5e-4)  # True
    adapter_fingerprint(model)  # 'base' for a plain model, 12 hex digits for a PEFT one
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from peft import PeftModel


def config_key(**config) -> str:
    """12 hex digits identifying ``config`` (JSON-serializable values; order of keys
    ignored)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def model_id(model) -> str:
    """The name or path a model was loaded from (for cache keys)."""
    config = getattr(model, "config", None)
    return getattr(config, "_name_or_path", type(model).__name__)


def adapter_fingerprint(model) -> str:
    """``'base'`` for a plain model; for a PEFT model, 12 hex digits of a hash of its
    adapter weights. Cache keys of generations include it, so a changed adapter is never
    served the generations of an old one. A plain model that still holds LoRA layers
    (PEFT puts an adapter *inside* the model it was loaded on) is refused: it would be
    cached as the base model."""
    from peft import get_peft_model_state_dict

    if not isinstance(model, PeftModel):
        # absent on stand-ins that only carry a name
        parameters = getattr(model, "named_parameters", None)
        if parameters is not None and any("lora_" in name for name, _ in parameters()):
            raise ValueError(
                "this model holds LoRA layers but is not a PeftModel: PEFT put an "
                "adapter inside it, so as 'the base model' it would run the adapter. "
                "Use the PeftModel, or tune inside `with du.adapter(...) as tuned:`, "
                "which takes the adapter out on leaving (or call `tuned.unload()`)."
            )
        return "base"
    digest = hashlib.sha256()
    for name, tensor in sorted(get_peft_model_state_dict(model).items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:12]


def partial_path(final: Path) -> Path:
    """Where this process writes ``final`` before it is complete: beside it, named for
    the process (``<name>.<pid>.partial``)."""
    return final.with_name(f"{final.name}.{os.getpid()}.partial")


def publish(partial: Path, final: Path) -> None:
    """Put the folder ``partial`` in the place of ``final``: a folder already there is
    first moved aside in one rename, so a reader sees the old result, the new one or
    none (and makes it again), never half of one. Where another process put its copy
    of the same result there meanwhile, that copy is kept and ``partial`` removed."""
    aside = final.with_name(f"{final.name}.{os.getpid()}.old")
    try:
        final.rename(aside)
    except FileNotFoundError:
        pass
    try:
        partial.rename(final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(partial)
    shutil.rmtree(aside, ignore_errors=True)


def json_value(value):
    """NumPy scalars as the Python numbers they hold; anything else JSON cannot write as
    its text."""
    return (
        value.item()
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0
        else str(value)
    )


def write_result(path: Path, config: dict, result, seconds: float) -> None:
    """Write ``{config, result, seconds}`` to ``path`` through a ``.partial`` file (an
    interrupted run leaves nothing half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    partial.write_text(
        json.dumps(
            {"config": config, "result": result, "seconds": seconds},
            ensure_ascii=False,
            default=json_value,
        ),
        encoding="utf-8",
    )
    os.replace(partial, path)
