"""Chapter 7's tools: cached measurements, LoRA doses, threshold crossings, the defaults rule and
the format probes (exact end-of-turn probability, sampling with the end of turn held)."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from peft import LoraConfig, get_peft_model

from diffuse_utils import ablation, format_probes
from diffuse_utils.artifacts import cached_measure
from diffuse_utils.decoding import SampleSettings
from diffuse_utils.encoding import encode_prompt, end_of_turn_ids
from diffuse_utils.sampling import sample

from conftest import make_tiny_model


@pytest.fixture
def lora_model(tiny_model):
    """The tiny model with a LoRA adapter whose B matrices are not zero (so it changes outputs)."""
    torch.manual_seed(0)
    model = get_peft_model(tiny_model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    return model.eval()


def _logits(model, tokenizer):
    ids = torch.tensor([encode_prompt(tokenizer, "Pick a number.")])
    with torch.no_grad():
        return model(input_ids=ids).logits[0, -1]


def test_cached_measure_computes_once_and_keys_by_adapter_and_settings(tmp_path, tiny_model, lora_model):
    calls = []

    def compute():
        calls.append(1)
        return {"value": np.float64(len(calls))}
    first = cached_measure(tmp_path, lora_model, "probe", compute, n=3)
    again = cached_measure(tmp_path, lora_model, "probe", compute, n=3)
    other = cached_measure(tmp_path, lora_model, "probe", compute, n=4)
    assert first == again == {"value": 1.0} and other == {"value": 2.0} and len(calls) == 2
    saved = json.loads(next((tmp_path / "measures").glob("probe-*.json")).read_text())
    assert saved["config"]["adapter"] != "base" and not list((tmp_path / "measures").glob("*.partial"))
    with ablation.scaled_lora(lora_model, 0.5):  # other weights: another entry
        assert cached_measure(tmp_path, lora_model, "probe", compute, n=3) == {"value": 3.0}


def test_scaled_lora_interpolates_between_base_and_adapter_and_restores_exactly(tokenizer, lora_model):
    before = {n: p.detach().clone() for n, p in lora_model.named_parameters()}
    tuned = _logits(lora_model, tokenizer)
    with lora_model.disable_adapter():
        base = _logits(lora_model, tokenizer)
    with ablation.scaled_lora(lora_model, 0.0):
        assert torch.allclose(_logits(lora_model, tokenizer), base, atol=1e-5)
    with ablation.scaled_lora(lora_model, 1.0):
        assert torch.allclose(_logits(lora_model, tokenizer), tuned, atol=1e-6)
    with ablation.scaled_lora(lora_model, 0.5):
        half = _logits(lora_model, tokenizer)
        assert not torch.allclose(half, tuned, atol=1e-4) and not torch.allclose(half, base, atol=1e-4)
    assert all(torch.equal(before[n], p) for n, p in lora_model.named_parameters())


def test_scaled_lora_refuses_a_model_without_adapter_and_a_negative_dose(tokenizer, lora_model):
    with pytest.raises(ValueError, match="no LoRA adapter"):
        with ablation.scaled_lora(make_tiny_model(len(tokenizer)), 0.5):
            pass
    with pytest.raises(ValueError, match="factor must be >= 0"):
        with ablation.scaled_lora(lora_model, -1):
            pass


def test_crossing_update_is_the_first_update_within_the_threshold():
    history = pd.DataFrame({"update": [0, 1, 2, 3], "loss": [3.0, 1.6, 1.19, 1.1], "optimal_loss": [1.0] * 4})
    assert ablation.crossing_update(history, 0.5) == 2
    assert ablation.crossing_update(history, 0.2) == 2
    assert ablation.crossing_update(history, 0.05) is None


def test_least_dose_picks_the_smallest_lr_times_updates_among_runs_that_qualify():
    runs = pd.DataFrame({"lr": [5e-4, 1e-4, 5e-5, 1e-3], "updates": [40, 100, 50, 10],
                         "stopped": [True, True, False, True], "knowledge change": [-2.0, -1.0, 0.0, -9.0]})
    pick = ablation.least_dose(runs, "knowledge", 5)
    assert (pick["lr"], pick["updates"]) == (1e-4, 100)   # dose 0.01; 5e-4 x 40 = 0.02; 1e-3 x 10 loses 9 points
    assert ablation.least_dose(runs, "knowledge", 0.5) is None


def test_turn_ending_probe_equals_the_next_token_softmax(tokenizer, tiny_model):
    probe = format_probes.turn_ending_probe(tiny_model, tokenizer, "Write a biography.", ["Ada Obi"])
    ids = torch.tensor([encode_prompt(tokenizer, "Write a biography.", "{Ada Obi}")])
    with torch.no_grad():
        probs = tiny_model(input_ids=ids).logits[0, -1].float().softmax(-1)
    ends = sorted(set(end_of_turn_ids(tokenizer)) | {tokenizer.eos_token_id})
    newline = [i for i in range(len(tokenizer)) if tokenizer.decode([i]).startswith("\n")]
    row = probe.iloc[0]
    assert row["p_end_of_turn"] == pytest.approx(float(probs[ends].sum()), rel=1e-5)
    assert row["p_newline"] == pytest.approx(float(probs[newline].sum()), rel=1e-5)
    assert row["top_token"] == tokenizer.decode([int(probs.argmax())])


class _EndsAtOnce(torch.nn.Module):
    """A model that wants to end its turn at every step (end-of-turn logits raised by 50)."""
    def __init__(self, model, ends):
        super().__init__()
        self.model, self.ends = model, ends

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    @property
    def config(self):
        return self.model.config

    def forward(self, **kwargs):
        output = self.model(**kwargs)
        boost = torch.zeros(output.logits.shape[-1])
        boost[self.ends] = 50.0
        output.logits = output.logits + boost
        return output


def test_sampling_holds_the_end_of_turn_until_the_fields_close(tokenizer, tiny_model):
    ends = sorted(set(end_of_turn_ids(tokenizer)) | {tokenizer.eos_token_id})
    eager = _EndsAtOnce(tiny_model, ends)
    settings = dict(max_new_tokens=6, response_prefix="{", progress=False)
    free = sample(eager, tokenizer, "Write.", n=3, closing_fields=0, **settings)
    held = sample(eager, tokenizer, "Write.", n=3, closing_fields=1, **settings)
    assert free == ["{"] * 3                        # nothing held: it ends at once
    assert all(len(text) > 1 for text in held)     # held: it cannot end before a brace closes


def test_holding_fields_changes_only_the_rows_that_would_end_early(tokenizer, tiny_model):
    settings = dict(max_new_tokens=8, seed=3, response_prefix="{", progress=False)
    plain = sample(tiny_model, tokenizer, "Pick.", n=12, **settings)
    assert sample(tiny_model, tokenizer, "Pick.", n=12, closing_fields=0, **settings) == plain
    held = sample(tiny_model, tokenizer, "Pick.", n=12, closing_fields=1, **settings)
    # a row that closed a brace before any end of turn was drawn never met the hold: the same text
    for before, after in zip(plain, held):
        if "}" in before:
            assert after == before
    assert SampleSettings(closing_fields=0) == SampleSettings()  # nothing held: the same draw, the same key


def test_biography_format_counts_fields_copies_and_distinct_values():
    texts = ["{Ada Obi}", "{David Hippocampus}\n{Male}\n{June 30, 1960}\n{Cambridge, UK}\n{Doctor}\n{Did it.}",
             "{Lee Chan}\n{Female}\n{May 2, 1931}\n{Lagos, Nigeria}\n{Nurse}\n{Led clinics.}", "no braces"]
    figures = format_probes.biography_format(texts)
    assert figures["n"] == 4 and figures["one_field"] == 0.25 and figures["well_formed"] == 0.5
    assert figures["copies_example"] == 0.25
    assert (figures["first_name_coverage"], figures["last_name_coverage"]) == (3, 3)
    assert (figures["birth_place_coverage"], figures["birth_year_coverage"]) == (2, 2)


def test_a_base_model_that_still_holds_an_adapter_is_refused_by_the_caches(tmp_path, tokenizer):
    from diffuse_utils.artifacts import adapter_fingerprint
    base = make_tiny_model(len(tokenizer))
    tuned = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"]))
    assert adapter_fingerprint(tuned) != "base"
    with pytest.raises(ValueError, match="holds LoRA layers but is not a PeftModel"):
        adapter_fingerprint(base)            # the same object PEFT injected the adapter into
    with pytest.raises(ValueError, match="unload"):
        cached_measure(tmp_path, base, "probe", lambda: {"x": 1})
    assert adapter_fingerprint(tuned.unload()) == "base"
