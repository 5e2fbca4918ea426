"""A base model (no chat template) end to end: load, score, sample and tune a completion-form task."""
import numpy as np
import pytest
import torch

import diffuse_utils as du
from diffuse_utils.scoring import naive_logprobs

PROMPT = "She rolled the 20-sided die. It landed on the number"


@pytest.fixture(scope="module")
def base(base_model_dir):
    return du.load_model(str(base_model_dir), device="cpu")


def die_task(stop: str | None = ".", n: int = 20) -> du.Task:
    return du.Task("die", [PROMPT], [f" {i}" for i in range(1, n + 1)], braces=False, completion=True, stop=stop)


def test_base_model_loads_without_a_chat_template_and_chat_form_raises(base):
    model, tokenizer = base
    assert not tokenizer.chat_template and tokenizer.pad_token is not None
    with pytest.raises(du.NoChatTemplateError, match="has no chat template.*completion=True"):
        du.target_logprobs(model, tokenizer, du.range_task(1, 10))
    with pytest.raises(du.NoChatTemplateError):
        du.sample(model, tokenizer, du.RNG_PROMPT, n=2, progress=False)


@pytest.mark.parametrize("stop", [".", "\n", None])
def test_completion_scores_equal_full_sequences_of_the_plain_text(base, stop):
    """Exact scores against the plain text written out by hand: prompt, target, then the stop text (or EOS)."""
    model, tokenizer = base
    task = die_task(stop)
    prompt = tokenizer(PROMPT)["input_ids"]
    ends = [tokenizer(t + stop, add_special_tokens=False)["input_ids"] if stop else
            tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in task.targets]
    with torch.no_grad():
        reference = naive_logprobs(model, prompt, ends).numpy()
    np.testing.assert_allclose(du.target_logprobs(model, tokenizer, task).to_numpy(), reference, atol=1e-5)


def greedy_reference(model, tokenizer, prompt: str, steps: int) -> list[int]:
    """Greedy tokens by full forward passes, no cache: an independent decoder."""
    ids = tokenizer(prompt)["input_ids"]
    out = []
    with torch.no_grad():
        for _ in range(steps):
            out.append(int(model(input_ids=torch.tensor([ids + out])).logits[0, -1].argmax()))
    return out


def test_completion_sampling_stops_at_the_stop_text(base):
    model, tokenizer = base
    tokens = greedy_reference(model, tokenizer, PROMPT, 6)
    text = tokenizer.decode(tokens)
    stop = next(ch for ch in tokenizer.decode(tokens[3:]) if ch.strip())  # a character the model writes at step 4+
    greedy = du.sample(model, tokenizer, PROMPT, n=3, temperature=0, max_new_tokens=6, completion=True, stop=stop,
                       progress=False)
    assert greedy == [text.split(stop, 1)[0]] * 3 and stop not in greedy[0]
    drawn = du.sample(model, tokenizer, PROMPT, n=40, max_new_tokens=8, completion=True, stop=" ", seed=1,
                      response_prefix=" 1", progress=False)
    assert all(t.startswith(" 1") and " " not in t[2:] for t in drawn)
    assert drawn == du.sample(model, tokenizer, PROMPT, n=40, max_new_tokens=8, completion=True, stop=" ", seed=1,
                              response_prefix=" 1", batch_size=7, progress=False)


def test_completion_task_tunes(base_model_dir):
    """One tuning update in completion form: the first recorded loss is Eq. 5 on the exact scores,
    and the update moves the model towards p*."""
    model, tokenizer = du.load_model(str(base_model_dir), device="cpu")  # its own copy: LoRA wraps it in place
    task = die_task(".", n=6)
    before = du.target_logprobs(model, tokenizer, task)
    budget = {"passes": 2, "update_per": "pass"} if hasattr(du, "TuneSettings") else {"steps": 2}
    tuned, history = du.tune(model, tokenizer, [task], lr=5e-2, lora_rank=2, progress=False, **budget)
    expected = -(task.probabilities * before.to_numpy()).sum()
    assert history["loss"].iloc[0] == pytest.approx(expected, rel=1e-5)
    after = du.target_logprobs(tuned, tokenizer, task)
    p_star = task.probabilities
    kl = lambda logprobs: du.kl_divergence(p_star, du.conditional_distribution(logprobs).to_numpy())
    assert -(p_star * after.to_numpy()).sum() < expected and kl(after) < kl(before)
