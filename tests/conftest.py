"""Shared fixtures: the embedded tokenizer, a tiny random causal LM on it, and the embedded model."""
import importlib.util
import sys
import types
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from diffuse_utils import Task, load_model
from diffuse_utils.models import embedded_model_dir


ROOT = Path(__file__).resolve().parents[1]


def load_script(path) -> types.ModuleType:
    """A script of the repository (``scripts/check_site.py``, ``benchmarks/record_book.py``)
    imported as a module under its file name, registered in ``sys.modules`` (dataclasses
    defined in it look their module up there)."""
    path = ROOT / path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = sys.modules[path.stem] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tokenizer():
    """SmolLM2's tokenizer (ChatML template), read from the de-quantized cache."""
    return AutoTokenizer.from_pretrained(embedded_model_dir())


def make_tiny_model(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    """A 2-layer Llama with random weights: fast, and exercises the real attention/cache code."""
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    return LlamaForCausalLM(config).eval()


def make_tiny_gemma2(vocab_size: int, **config) -> "Gemma2ForCausalLM":
    """A 2-layer Gemma-2 with random weights, for what Llama lacks (soft-capped logits, sliding
    windows); ``config`` overrides or adds to its settings."""
    from transformers import Gemma2Config, Gemma2ForCausalLM
    torch.manual_seed(0)
    settings = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=256)
    return Gemma2ForCausalLM(Gemma2Config(**{**settings, **config})).eval()


@pytest.fixture
def tiny_model(tokenizer):
    return make_tiny_model(len(tokenizer))


@pytest.fixture(scope="session")
def base_model_dir(tokenizer, tmp_path_factory):
    """A folder holding a tiny random Llama and SmolLM2's tokenizer *without* a chat template, as a
    base model is saved: for completion-form tasks."""
    import copy
    folder = tmp_path_factory.mktemp("base-model")
    make_tiny_model(len(tokenizer)).save_pretrained(folder)
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    plain.save_pretrained(folder)
    return folder


@pytest.fixture
def small_task():
    """Targets of different token lengths, non-uniform weights."""
    return Task(name="small", prompts=["Pick one.", "Choose one, please."],
                targets=["a", "bb", "hello world", "7", "Zoë"], weights=[1, 2, 3, 4, 0])


@pytest.fixture(scope="session")
def embedded():
    model, tok = load_model(device="cpu")
    return model, tok


@pytest.fixture
def rng_task():
    from diffuse_utils import RNG_PROMPT
    return Task(name="rng", prompts=[RNG_PROMPT], targets=[str(i) for i in range(1, 11)])
