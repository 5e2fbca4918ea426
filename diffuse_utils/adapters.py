"""LoRA adapters: made, saved, loaded, and taken out again.

- :func:`add_lora`: fresh adapters on a base model (PEFT; the paper's rank, alpha and
  modules by default), seeded without touching the caller's random state;
- :func:`save_adapter`, :func:`load_adapter`: PEFT safetensors, never pickle;
- :func:`adapter`: a context manager that always hands the base model back.

Example::

    with adapter(load_adapter(model, "artifacts/adapters/rng-...")) as tuned:
        sample(tuned, tokenizer, RNG_PROMPT, n=10)
    sample(model, tokenizer, RNG_PROMPT, n=10)  # the base model again
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from .schedule import PAPER_TARGET_MODULES

# PEFT reads transformers' deprecated ``is_gradient_checkpointing`` whenever it wraps a
# model: a warning between two libraries that a reader cannot act on, silenced where
# PEFT is called, by message, category and module.
_PEFT_READS_DEPRECATED = dict(
    action="ignore",
    message="`is_gradient_checkpointing` is deprecated",
    category=FutureWarning,
    module="transformers.modeling_utils",
)


def rng_devices(model) -> list[int]:
    """The CUDA devices whose random state a seeded step must fork (none on a CPU)."""
    device = model.get_input_embeddings().weight.device
    return [device.index or 0] if device.type == "cuda" else []


def add_lora(
    model,
    lora_rank: int = 4,
    lora_alpha: float = 8,
    target_modules=None,
    seed: int = 0,
    lora_dropout: float = 0.0,
):
    """Wrap ``model`` with fresh LoRA adapters (PEFT). The base weights are frozen and
    shared: the base model object gains the (zero-initialized B) LoRA layers in place.
    The random A matrices come from ``seed``; the caller's torch random state is
    restored afterwards."""
    config = LoraConfig(
        r=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        task_type="CAUSAL_LM",
        target_modules=list(target_modules or PAPER_TARGET_MODULES)
        if not isinstance(target_modules, str)
        else target_modules,
    )
    with torch.random.fork_rng(devices=rng_devices(model)), warnings.catch_warnings():
        warnings.filterwarnings(**_PEFT_READS_DEPRECATED)
        torch.manual_seed(seed)
        return get_peft_model(model, config)


def save_adapter(model: PeftModel, path) -> None:
    """Write the LoRA adapter as PEFT safetensors (``adapter_model.safetensors`` +
    config)."""
    model.save_pretrained(str(path), safe_serialization=True)


def load_adapter(base_model, path) -> PeftModel:
    """Attach a saved adapter to ``base_model`` (in eval mode). Loads safetensors, never
    pickle."""
    with warnings.catch_warnings():
        warnings.filterwarnings(**_PEFT_READS_DEPRECATED)
        return PeftModel.from_pretrained(
            base_model, str(path), is_trainable=False
        ).eval()


@contextmanager
def adapter(tuned):
    """The tuned model inside the block; on leaving it (an error included) the adapter
    is taken out of the base model, which PEFT had changed in place, so the caller's
    base model is the base model again. ``tuned``: a ``PeftModel``, or the
    ``(model, history)`` pair that :func:`tune` and ``artifacts.cached_tune`` return.

    Example::

        with adapter(
            cached_tune("artifacts", model, tokenizer, [rng], lr=5e-4)
        ) as tuned:
            sample(tuned, tokenizer, RNG_PROMPT, n=10)
        # the base model, no LoRA layers left
        sample(model, tokenizer, RNG_PROMPT, n=10)
    """
    peft_model = tuned[0] if isinstance(tuned, tuple) else tuned
    if not isinstance(peft_model, PeftModel):
        raise TypeError(
            "adapter() takes a PeftModel or a (PeftModel, history) pair; got "
            f"{type(peft_model).__name__}"
        )
    try:
        yield peft_model
    finally:
        peft_model.unload()
