"""Training as the paper's release trains (one update per prompt), and the exact diagnostics of a run."""
import random

import numpy as np
import pytest
import torch

from diffuse_utils import Task, TuneSettings, encode_task, target_logprobs, tune, tune_settings
from diffuse_utils.diagnostics import TrainingMonitor, decompose, terms
from diffuse_utils.scoring import naive_logprobs
from diffuse_utils.tuning import add_lora, distribution_matching_loss

from conftest import make_tiny_model

# tune(..., update_per="pass") on two tasks, as the code before per-prompt updates computed it
# (lora_alpha = 2 r, AdamW eps 1e-8): one pass is one update, so these must not move.
PER_PASS_REFERENCE = [90.01511359214783, 89.75129532814026, 89.301029920578, 88.62915635108948]
PER_PASS_SAMPLED_REFERENCE = [73.15028762817383, 100.0970811843872, 72.54431056976318, 69.44177341461182]


def _lora_state(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def test_per_pass_mode_is_unchanged(tokenizer, small_task):
    tasks = [small_task, Task("two", ["Pick."], ["a", "b"], weights=[1, 3])]
    settings = dict(passes=4, lr=1e-2, lora_rank=2, lora_alpha=4, adam_eps=1e-8, update_per="pass", seed=1)
    full = tune(make_tiny_model(len(tokenizer)), tokenizer, tasks, progress=False, **settings)[1]
    sampled = tune(make_tiny_model(len(tokenizer)), tokenizer, tasks, progress=False, tasks_per_step=2,
                   targets_per_step=3, **settings)[1]
    np.testing.assert_allclose(full["loss"], PER_PASS_REFERENCE, rtol=1e-6)
    np.testing.assert_allclose(sampled["loss"], PER_PASS_SAMPLED_REFERENCE, rtol=1e-6)


def test_per_prompt_mode_equals_a_hand_written_loop(tokenizer, small_task):
    """Two passes over a 2-prompt and a 1-prompt task: 3 updates a pass, in a seeded shuffled order."""
    tasks = [small_task, Task("two", ["Pick."], ["a", "b"], weights=[1, 3])]
    settings = TuneSettings(passes=2, lr=2e-2, lora_rank=2, seed=4)
    tuned, history = tune(make_tiny_model(len(tokenizer)), tokenizer, tasks, settings, progress=False)

    model = add_lora(make_tiny_model(len(tokenizer)), lora_rank=2, lora_alpha=8, seed=4)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-2, eps=1e-5, weight_decay=0.01)
    encoded = [encode_task(tokenizer, t) for t in tasks]
    pairs = [(e, prompt) for e in encoded for prompt in e.prompt_ids]
    rng, losses = np.random.default_rng(4), []
    model.train()
    for _ in range(2):
        for k in rng.permutation(len(pairs)):
            item, prompt = pairs[k]
            optimizer.zero_grad()
            p_star = torch.tensor(item.task.probabilities, dtype=torch.float32)
            loss = distribution_matching_loss(naive_logprobs(model, prompt, item.target_ids), p_star)
            loss.backward()
            losses.append(loss.item())
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
    assert history["update"].tolist() == list(range(6)) and history["pass"].tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-4)
    expected = _lora_state(model)
    for name, tensor in _lora_state(tuned).items():
        torch.testing.assert_close(tensor, expected[name], atol=1e-5, rtol=1e-4, msg=name)


def test_two_prompts_make_two_updates_a_pass_and_the_pass_loss_stops_the_run(tokenizer, small_task):
    history = tune(make_tiny_model(len(tokenizer)), tokenizer, [small_task], passes=3, progress=False)[1]
    assert history.groupby("pass")["update"].count().tolist() == [2, 2, 2]
    h = history["optimal_loss"].iloc[0]
    assert h == pytest.approx(decompose(np.zeros(5), small_task.probabilities)["H"])
    # the release's rule: a pass stops the run when the sum of its prompts' losses is within gamma of theirs
    pass_excess = history.groupby("pass")["loss"].sum() / (2 * h) - 1
    gamma = float(pass_excess.iloc[1]) + 1e-9
    stopped = tune(make_tiny_model(len(tokenizer)), tokenizer, [small_task], passes=3, early_stop_gamma=gamma,
                   progress=False)[1]
    assert stopped["pass"].max() == int(np.argmax(pass_excess.to_numpy() <= gamma))


def test_tune_leaves_the_callers_random_state_alone(tokenizer, small_task):
    model = make_tiny_model(len(tokenizer))  # (it seeds torch itself)
    torch.manual_seed(123)
    np.random.seed(5)
    random.seed(7)
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    tune(model, tokenizer, [small_task], passes=2, lora_dropout=0.5, progress=False)
    assert torch.equal(torch.get_rng_state(), before[0])
    assert np.array_equal(np.random.get_state()[1], before[1]) and random.getstate() == before[2]


def test_settings_are_arguments_and_reach_the_optimizer_and_lora(tokenizer, small_task, monkeypatch):
    seen = {}
    real = torch.optim.AdamW

    def spy(params, **kwargs):
        seen.update(kwargs)
        return real(params, **kwargs)
    monkeypatch.setattr(torch.optim, "AdamW", spy)
    tuned, _ = tune(make_tiny_model(len(tokenizer)), tokenizer, [small_task], passes=1, lr=3e-3, adam_eps=1e-6,
                    weight_decay=0.5, lora_rank=3, lora_alpha=12, lora_dropout=0.25, progress=False)
    assert seen == {"lr": 3e-3, "eps": 1e-6, "weight_decay": 0.5}
    config = tuned.peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout) == (3, 12, 0.25)
    with pytest.raises(ValueError, match="'steps' is now 'passes'"):
        tune_settings(steps=3)
    with pytest.raises(ValueError, match="update_per must be one of"):
        TuneSettings(update_per="batch")


def test_tuning_continues_an_adapter_in_place(tokenizer, small_task):
    first, _ = tune(make_tiny_model(len(tokenizer)), tokenizer, [small_task], passes=2, lr=1e-2, progress=False)
    start = _lora_state(first)
    continued, history = tune(first, tokenizer, [small_task], passes=1, lr=1e-2, progress=False)
    assert continued is first and len(history) == 2
    assert any(not torch.equal(start[n], t) for n, t in _lora_state(continued).items())
    fresh = tune(make_tiny_model(len(tokenizer)), tokenizer, [small_task], passes=1, lr=1e-2, progress=False)[1]
    assert history["loss"].iloc[0] < fresh["loss"].iloc[0]  # it starts where the first run ended


def test_diagnostics_match_exact_scoring_and_the_identity_holds(tokenizer):
    names = Task("names", ["Name one.", "Give a name."], ["Ann", "Bo", "Cy"], weights=[3, 2, 1],
                 metadata={"held_out": ["Di", "Ed"]})
    other = Task("other", ["Pick."], ["x", "y"])
    monitor = TrainingMonitor(tokenizer, [names, other], every=2)
    tuned, history = tune(make_tiny_model(len(tokenizer)), tokenizer, [names, other], passes=2, lr=2e-2,
                          monitor=monitor, progress=False)
    measured = history.dropna(subset=["L/names"])
    assert measured["update"].tolist() == [0, 2, 4, 6]  # before every 2nd update, and the end (6 updates)
    for task in ("names", "other"):
        rows = terms(history, task)
        np.testing.assert_allclose(rows["L"], rows["H"] + rows["KL"] + rows["neg_log_mass"], atol=1e-5)
    assert "memorization" in terms(history, "names") and "memorization" not in terms(history, "other")
    # the last row is the returned model: check it against target_logprobs and numpy
    last = measured.iloc[-1]
    p_star = names.probabilities
    held = Task("held", names.prompts, ["Di", "Ed"])
    expected = {"L": [], "KL": [], "neg_log_mass": [], "memorization": []}
    for j in range(2):
        logp = target_logprobs(tuned, tokenizer, names, prompt_index=j).to_numpy()
        held_logp = target_logprobs(tuned, tokenizer, held, prompt_index=j).to_numpy()
        mass = np.exp(logp).sum()
        expected["L"].append(-(p_star * logp).sum())
        expected["KL"].append((p_star * np.log(p_star / (np.exp(logp) / mass))).sum())
        expected["neg_log_mass"].append(-np.log(mass))
        expected["memorization"].append(np.exp(held_logp).mean() / np.exp(logp).mean())
    for key, values in expected.items():
        assert last[f"{key}/names"] == pytest.approx(np.mean(values), rel=1e-4), key
    assert (history["diagnostic_seconds"].diff().dropna() >= 0).all() and history["diagnostic_seconds"].iloc[-1] > 0


def test_monitor_every_must_be_positive(tokenizer):
    with pytest.raises(ValueError, match="every must be a positive integer"):
        TrainingMonitor(tokenizer, [], every=0)


def test_cached_runs_are_shared_with_and_without_a_monitor_and_continuations_keyed_apart(tokenizer, tmp_path):
    from diffuse_utils.artifacts import cached_tune
    task = Task("names", ["Name one."], ["Ann", "Bo"], metadata={"held_out": ["Cy"]})
    settings = TuneSettings(passes=2, lr=1e-2, lora_rank=2)
    plain, history = cached_tune(tmp_path, make_tiny_model(len(tokenizer)), tokenizer, [task], settings, progress=False)
    assert "L/names" not in history
    monitor = TrainingMonitor(tokenizer, [task])
    watched, measured = cached_tune(tmp_path, make_tiny_model(len(tokenizer)), tokenizer, [task], settings,
                                    monitor=monitor, progress=False)
    assert "memorization/names" in measured  # the saved run lacked the measurements: run again with them
    for name, tensor in _lora_state(plain).items():
        torch.testing.assert_close(_lora_state(watched)[name], tensor)
    _, again = cached_tune(tmp_path, make_tiny_model(len(tokenizer)), tokenizer, [task], settings, progress=False)
    assert "L/names" in again and len(list((tmp_path / "adapters").iterdir())) == 1
    start = tune(make_tiny_model(len(tokenizer)), tokenizer, [task], passes=1, lr=1e-2, lora_rank=2, progress=False)[0]
    cached_tune(tmp_path, start, tokenizer, [task], settings, progress=False)
    assert len(list((tmp_path / "adapters").iterdir())) == 2  # continuing an adapter is another configuration
