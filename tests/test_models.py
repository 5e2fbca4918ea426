import pytest
import torch

from diffuse_utils import load_model, load_tokenizer, resolve_device, resolve_dtype
from diffuse_utils.models import ModelNotAvailableError

from conftest import make_tiny_model


def test_resolve_dtype_and_device():
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16") == torch.bfloat16 and resolve_dtype(torch.float16) == torch.float16
    with pytest.raises(ValueError, match="Unknown dtype 'float8'"):
        resolve_dtype("float8")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}


@pytest.mark.parametrize("gpu, capability, expected", [("T4", (7, 5), torch.float32),
                                                        ("A100", (8, 0), torch.bfloat16)])
def test_auto_dtype_is_bf16_only_where_the_gpu_has_it_natively(monkeypatch, gpu, capability, expected):
    """A T4 runs bf16 only by emulation (a bf16 tensor can be made, slowly): "auto" must give it fp32."""
    from types import SimpleNamespace
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device=None: SimpleNamespace(name=gpu, major=capability[0], minor=capability[1]))
    monkeypatch.setattr(torch.cuda, "_check_bf16_tensor_supported", lambda device: True, raising=False)  # emulation
    assert torch.cuda.is_bf16_supported()  # what "auto" asked before: True on both
    assert resolve_dtype("auto", "cuda") == expected and resolve_dtype("auto", "cpu") == torch.float32


def test_unknown_model_offline_names_it_and_says_how_to_get_it(monkeypatch):
    import time

    from diffuse_utils import models
    monkeypatch.setattr(models, "hub_reachable", lambda timeout=3.0: False)
    start = time.perf_counter()
    with pytest.raises(ModelNotAvailableError) as info:
        load_model("no-such-org/no-such-model-diffuse")
    message = str(info.value)
    assert "'no-such-org/no-such-model-diffuse'" in message and "huggingface-cli download" in message
    assert "cannot be reached" in message and time.perf_counter() - start < 10  # no retry loop


def test_offline_flag_means_hub_unreachable(monkeypatch):
    from diffuse_utils.models import hub_reachable
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_reachable() is False


def test_local_folder_loads_with_dtype(tokenizer, tmp_path):
    make_tiny_model(len(tokenizer)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model, tok = load_model(str(tmp_path), device="cpu", dtype="bf16")
    assert model.dtype == torch.bfloat16 and not model.training and tok.pad_token is not None


def test_load_tokenizer_matches_load_model(tokenizer, tmp_path):
    make_tiny_model(len(tokenizer)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    alone = load_tokenizer(str(tmp_path))
    assert alone("{7}")["input_ids"] == load_model(str(tmp_path), device="cpu")[1]("{7}")["input_ids"]
    assert load_tokenizer().convert_ids_to_tokens(2) == "<|im_end|>"  # the embedded model's end of turn


def test_embedded_gguf_by_path_and_by_folder_is_the_embedded_model(tmp_path):
    """A .gguf path, or a folder holding only it, loads the way the embedded model does (same cache)."""
    from diffuse_utils.models import embedded_gguf_path, embedded_model_dir
    gguf = embedded_gguf_path()
    folder = tmp_path / "only-gguf"
    folder.mkdir()
    (folder / gguf.name).symlink_to(gguf)
    for name in (str(gguf), str(folder)):
        model, tok = load_model(name, device="cpu")
        assert model.config._name_or_path == str(embedded_model_dir())
        assert tok.convert_ids_to_tokens(2) == "<|im_end|>" and load_tokenizer(name)("{7}") == tok("{7}")


def test_other_gguf_is_cached_by_name_size_and_mtime(tmp_path, monkeypatch):
    """A new .gguf is de-quantized once into a folder keyed by the file; a changed file gets a new folder."""
    import os

    from diffuse_utils import models
    written = []

    def fake_write(gguf, target):
        written.append((gguf, target))
        target.mkdir(parents=True)
        (target / "model.safetensors").write_text("")

    monkeypatch.setattr(models, "_write_gguf_cache", fake_write)
    gguf = tmp_path / "base.Q8_0.gguf"
    gguf.write_bytes(b"GGUF" + bytes(60))
    first = models.gguf_model_dir(gguf, tmp_path / "cache")
    assert models._source(str(gguf), tmp_path / "cache", False) == str(first) and len(written) == 1
    assert first.parent == tmp_path / "cache" and first.name.startswith("base.Q8_0-")
    os.utime(gguf, ns=(1, 1))
    second = models.gguf_model_dir(gguf, tmp_path / "cache")
    assert second != first and [t for _, t in written] == [first, second]


def test_two_first_loads_at_once_both_succeed_and_leave_one_folder(tmp_path, monkeypatch, tokenizer):
    """Two processes de-quantizing the same file: each writes its own partial folder; the one
    that renames second finds the model there, drops its copy and goes on."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from diffuse_utils import models
    target = tmp_path / "cache" / "model"

    def from_pretrained(*args, **kwargs):   # the other process finishes while this one loads
        target.mkdir(parents=True)
        (target / "model.safetensors").write_text("the other's")
        return make_tiny_model(len(tokenizer))

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", from_pretrained)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda *a, **k: tokenizer)
    models._write_gguf_cache(tmp_path / "m.gguf", target)
    assert (target / "model.safetensors").read_text() == "the other's"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]   # no partial folder left


def test_gguf_folders_and_files_that_cannot_load_say_why(tmp_path):
    several = tmp_path / "several"
    several.mkdir()
    for name in ("a.Q4_0.gguf", "a.Q8_0.gguf"):
        (several / name).write_bytes(b"GGUF")
    with pytest.raises(ModelNotAvailableError, match=r"holds 2 \.gguf files \(a\.Q4_0\.gguf, a\.Q8_0\.gguf\)"):
        load_model(str(several))
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    with pytest.raises(ModelNotAvailableError, match="is a file but not a .gguf"):
        load_model(str(other))
    with pytest.raises(ModelNotAvailableError, match="holds neither a config.json nor a .gguf"):
        load_tokenizer(str(tmp_path / "several" / ".."))  # tmp_path: only folders and a .bin


def test_packaged_base_model_missing_package_says_how_to_install(monkeypatch):
    from diffuse_utils import models
    monkeypatch.setitem(models.PACKAGED_GGUFS, "no-such-base", ("no_such_module_diffuse", "no-such-package"))
    with pytest.raises(ModelNotAvailableError, match="pip install no-such-package"):
        load_model("no-such-base")


@pytest.mark.parametrize("name, label", [
    (None, "SmolLM2-135M-Instruct"), ("embedded", "SmolLM2-135M-Instruct"),
    ("google/gemma-2-2b-it", "gemma-2-2b-it"), ("/models/qwen/", "qwen"),
    ("/models/base.Q8_0.gguf", "base.Q8_0"),
])
def test_model_label_names_the_model_a_table_shows(name, label):
    from diffuse_utils.models import model_label
    assert model_label(name) == label
