"""The package's shape as a newcomer meets it: narrow public signatures, one settings object per
kind of work, and ``du.adapter`` handing the base model back."""
import importlib
import inspect
import pkgutil

import pytest

import diffuse_utils as du
from diffuse_utils.artifacts import adapter_fingerprint
from diffuse_utils.tuning import add_lora

from conftest import make_tiny_model


def _public_functions():
    for info in pkgutil.iter_modules(du.__path__):
        module = importlib.import_module(f"diffuse_utils.{info.name}")
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                yield f"{info.name}.{name}", obj
            elif inspect.isclass(obj):
                for method, function in vars(obj).items():
                    if inspect.isfunction(function) and not method.startswith("_"):
                        yield f"{info.name}.{name}.{method}", function


def test_no_public_function_takes_more_than_ten_parameters():
    wide = {name: len([p for p in inspect.signature(f).parameters if p not in ("self", "cls")])
            for name, f in _public_functions()}
    assert len(wide) > 100  # the walk found the package's functions
    assert {name: n for name, n in wide.items() if n > 10} == {}


def test_sampling_functions_take_one_settings_object():
    for function in (du.sample, du.sampling.sample_prompts, du.cached_generations,
                     du.evaluation.evaluate_family):
        parameters = inspect.signature(function).parameters
        assert "settings" in parameters and "max_new_tokens" not in parameters, function.__name__
        assert "seed" not in parameters and "temperature" not in parameters, function.__name__


def test_adapter_hands_the_base_model_back_even_after_an_error(tokenizer):
    model = make_tiny_model(len(tokenizer))
    with du.adapter(add_lora(model, lora_rank=2)) as tuned:
        assert adapter_fingerprint(tuned) != "base"
    assert adapter_fingerprint(model) == "base"      # no LoRA layer left inside the base model
    with pytest.raises(RuntimeError, match="boom"):
        with du.adapter((add_lora(model, lora_rank=2), None)):   # the (model, history) pair of tune
            raise RuntimeError("boom")
    assert adapter_fingerprint(model) == "base"
    with pytest.raises(TypeError, match="takes a PeftModel"):
        with du.adapter(model):
            pass


def test_the_package_docstring_names_every_module():
    names = [info.name for info in pkgutil.iter_modules(du.__path__)]
    assert [name for name in names if f"``{name}``" not in du.__doc__] == []
