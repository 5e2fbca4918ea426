import pytest
import torch

from diffuse_utils import ModelNotAvailableError, load_model, load_tokenizer, resolve_device, resolve_dtype

from conftest import make_tiny_model


def test_resolve_dtype_and_device():
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16") == torch.bfloat16 and resolve_dtype(torch.float16) == torch.float16
    with pytest.raises(ValueError, match="Unknown dtype 'float8'"):
        resolve_dtype("float8")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}


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
