
import numpy as np
import pytest
import torch

from diffuse_utils import Task, distribution_matching_loss, encode_task, target_logprobs, tune
from diffuse_utils.tuning import load_adapter, save_adapter
from diffuse_utils.metrics import entropy, kl_divergence
from diffuse_utils.scoring import naive_logprobs
from diffuse_utils.packing import accumulate_gradients
from diffuse_utils.tries import Query
from diffuse_utils.schedule import TuneSettings, plan_pass
from diffuse_utils.tuning import add_lora
from dataclasses import replace

from conftest import make_tiny_model


def test_loss_is_kl_plus_entropy_and_minimal_at_p_star():
    generator = torch.Generator().manual_seed(0)
    p_star = torch.rand(12, generator=generator, dtype=torch.float64)
    p_star /= p_star.sum()
    logits = torch.randn(12, generator=generator, dtype=torch.float64, requires_grad=True)
    loss = distribution_matching_loss(logits.log_softmax(-1), p_star)
    p = logits.softmax(-1).detach().numpy()
    h = entropy(p_star.numpy())
    assert loss.item() == pytest.approx(kl_divergence(p_star.numpy(), p) + h, abs=1e-12)
    at_optimum = p_star.log().clone().requires_grad_()
    optimum_loss = distribution_matching_loss(at_optimum.log_softmax(-1), p_star)
    optimum_loss.backward()
    assert optimum_loss.item() == pytest.approx(h, abs=1e-12)
    assert at_optimum.grad.abs().max().item() < 1e-12


@pytest.mark.parametrize("tokens_per_pass", [3, 1024])
def test_accumulated_gradient_equals_naive_gradient(tokenizer, small_task, tokens_per_pass):
    """Packed passes over both prompts, each back-propagated on its own, give the full-sequence gradient."""
    encoded = encode_task(tokenizer, small_task)
    p_star = torch.tensor(small_task.probabilities, dtype=torch.float32)
    scales = [0.5, 0.25]
    grads = []
    for method in ("packed", "naive"):
        model = add_lora(make_tiny_model(len(tokenizer)), lora_rank=2, seed=0)
        for name, param in model.named_parameters():  # make B non-zero so every path carries gradient
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.1, generator=torch.Generator().manual_seed(1))
        if method == "packed":
            queries = [Query(prompt, encoded.target_ids) for prompt in encoded.prompt_ids]
            losses = accumulate_gradients(model, queries, [p_star * scale for scale in scales],
                                          tokens_per_pass=tokens_per_pass)
        else:
            losses = []
            for prompt, scale in zip(encoded.prompt_ids, scales):
                full = scale * distribution_matching_loss(naive_logprobs(model, prompt, encoded.target_ids), p_star)
                full.backward()
                losses.append(full.item())
        grads.append((losses, {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}))
    assert grads[0][0] == pytest.approx(grads[1][0], abs=1e-5)
    for name, grad in grads[0][1].items():
        torch.testing.assert_close(grad, grads[1][1][name], atol=1e-5, rtol=1e-4, msg=name)


def test_tune_lowers_loss_and_round_trips(tokenizer, tmp_path):
    task = Task("two", ["Pick."], ["a", "b"], weights=[1, 3])
    model, history = tune(make_tiny_model(len(tokenizer)), tokenizer, [task], passes=25, lr=1e-2, lora_rank=2,
                          progress=False)
    assert list(history.columns) == ["pass", "update", "loss", "optimal_loss", "stepped", "loss/two", "seconds",
                                     "diagnostic_seconds"]
    assert history["stepped"].all()
    assert history["optimal_loss"].iloc[0] == pytest.approx(entropy([1, 3]))
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    tuned = target_logprobs(model, tokenizer, task)
    save_adapter(model, tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    reloaded = load_adapter(make_tiny_model(len(tokenizer)), tmp_path / "adapter")
    np.testing.assert_allclose(target_logprobs(reloaded, tokenizer, task), tuned, atol=1e-6)


def test_early_stop_and_same_seed_same_history(tokenizer):
    task = Task("two", ["Pick."], ["a", "b"])
    timeless = lambda history: history.drop(columns=["seconds", "diagnostic_seconds"])
    runs = [timeless(tune(make_tiny_model(len(tokenizer)), tokenizer, [task], passes=4, lr=1e-2, lora_rank=2, seed=3,
                          progress=False)[1]) for _ in range(2)]
    assert runs[0].equals(runs[1])
    for update_per, updates in (("pass", 0), ("prompt", 1)):  # per pass: stop before the update; per prompt: after
        stopped = tune(make_tiny_model(len(tokenizer)), tokenizer, [task], passes=10, early_stop_gamma=1e6,
                       update_per=update_per, progress=False)[1]
        assert len(stopped) == 1  # the first loss is already within (1 + gamma) * H(p*)
        assert stopped["stepped"].sum() == updates


def test_duplicate_task_names_rejected(tokenizer):
    task = Task("same", ["p"], ["a"])
    with pytest.raises(ValueError, match="task names must be unique"):
        tune(make_tiny_model(len(tokenizer)), tokenizer, [task, task], passes=1, progress=False)


def test_fit_free_logits_converges_to_binomial():
    from math import comb

    from diffuse_utils.tuning import fit_free_logits
    binomial = [comb(10, k) * 0.2 ** k * 0.8 ** (10 - k) for k in range(11)]
    history = fit_free_logits(binomial, steps=2000, lr=0.1)
    last = history.iloc[-1]
    assert last["kl"] < 1e-4 and last["loss"] == pytest.approx(entropy(binomial), abs=1e-4)
    assert history["kl"].iloc[0] > 0.1
    np.testing.assert_allclose([last[f"p_{k}"] for k in range(11)], binomial, atol=2e-3)


def _two_tasks(tokenizer):
    first = Task("first", ["Pick.", "Choose.", "Select."], ["a", "b", "c", "d"], weights=[1, 2, 3, 4])
    second = Task("second", ["Name one."], ["x", "y"])
    return [encode_task(tokenizer, first), encode_task(tokenizer, second)]


def test_step_plan_without_sampling_is_every_prompt_and_target(tokenizer):
    [update] = list(plan_pass(_two_tasks(tokenizer), np.random.default_rng(0), TuneSettings(update_per="pass")))
    plan = update.items
    assert [item.task.name for item, *_ in plan] == ["first", "first", "first", "second"]
    np.testing.assert_allclose(plan[0][3], np.array([0.1, 0.2, 0.3, 0.4]) / 3)
    np.testing.assert_allclose(plan[3][3], [0.5, 0.5])
    assert list(plan[0][2]) == [0, 1, 2, 3]
    assert update.optimal == pytest.approx(entropy([1, 2, 3, 4]) + np.log(2))


def test_sampled_step_plan_is_an_unbiased_estimate_of_the_full_loss(tokenizer):
    """E[sum over the plan of scale * weight * f] equals the full sum, for any per-target f."""
    encoded = _two_tasks(tokenizer)
    settings = TuneSettings(update_per="pass")
    f = {("first", 0): [1.0, 5.0, -2.0, 3.0], ("first", 1): [0.5, 0.0, 4.0, 1.0], ("first", 2): [2.0, 2.0, 2.0, 9.0],
         ("second", 0): [7.0, -1.0]}

    def total(plan):
        out = 0.0
        [update] = list(plan)
        for item, prompt, indices, weights in update.items:
            j = next(j for j, p in enumerate(item.prompt_ids) if p is prompt)
            out += sum(w * f[(item.task.name, j)][k] for k, w in zip(indices, weights))
        return out

    full = total(plan_pass(encoded, np.random.default_rng(0), settings))
    rng, sampled = np.random.default_rng(1), replace(settings, tasks_per_step=2, targets_per_step=3)
    estimates = [total(plan_pass(encoded, rng, sampled)) for _ in range(20000)]
    assert full == pytest.approx((1.7 + 1.65 + 4.8) / 3 + 3.0)  # mean over the three prompts, plus "second"
    assert np.mean(estimates) == pytest.approx(full, rel=0.02)
    assert np.std(estimates) > 0.1  # it is an estimate, not the full sum


def test_sampled_tuning_is_seeded_and_marks_undrawn_tasks(tokenizer):
    tasks = [Task("first", ["Pick.", "Choose."], ["a", "b", "c"]), Task("second", ["Name one."], ["x", "y"])]
    runs = [tune(make_tiny_model(len(tokenizer)), tokenizer, tasks, passes=4, lr=1e-2, lora_rank=2, seed=5,
                 update_per="pass", tasks_per_step=1, targets_per_step=2, progress=False)[1] for _ in range(2)]
    assert runs[0].drop(columns=["seconds", "diagnostic_seconds"]).equals(runs[1].drop(columns=["seconds", "diagnostic_seconds"]))
    drawn = runs[0][["loss/first", "loss/second"]].notna().sum(axis=1)
    assert (drawn == 1).all()  # one (task, prompt) pair per step: the other task's column is empty
    with pytest.raises(ValueError, match="tasks_per_step must be a positive integer or None"):
        tune(make_tiny_model(len(tokenizer)), tokenizer, tasks, passes=1, tasks_per_step=0, progress=False)
