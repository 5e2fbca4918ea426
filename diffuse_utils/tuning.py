"""LoRA fine-tuning with the distribution-matching loss (the paper's Eq. 5).

``L = -sum_{y in T} p*(y|x) log p_theta(y|x) = KL(p* || p_theta) + H(p*)``, so the
smallest possible loss is ``H(p*)`` (the paper's printed ``- H`` is a sign typo).
Every step is one pass over all prompts of all tasks (or a random subset of them).
The step's ``prompt + target`` sequences are scored together as a trie (``packing``):
every shared token prefix, prompts included, runs through the model once, in forward
passes of about ``tokens_per_pass`` tokens whose gradients are accumulated.

Example::

    model, history = tune(model, tokenizer, [rng_task], steps=30, lr=5e-4)
    history.tail(1)          # loss ~ 2.31, optimal_loss = ln 10 = 2.3026
    save_adapter(model, "artifacts/rng"); load_adapter(base, "artifacts/rng")
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from tqdm.auto import tqdm

from .encoding import EncodedTask, encode_task
from .metrics import entropy
from .packing import TOKENS_PER_PASS, Query, accumulate_gradients
from .tasks import Task

PAPER_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def distribution_matching_loss(logprobs: torch.Tensor, p_star: torch.Tensor) -> torch.Tensor:
    """Eq. 5: ``-sum_y p*(y) log p_theta(y)``. Shapes ``(T,)`` and ``(T,)`` -> scalar.

    Minimum ``H(p*)``, reached when ``p_theta(y) = p*(y)`` on every target.
    """
    return -(p_star * logprobs).sum()


def add_lora(model, lora_rank: int = 4, lora_alpha: int | None = None, target_modules=None, seed: int = 0):
    """Wrap ``model`` with fresh LoRA adapters (PEFT). The base weights are frozen and
    shared: the base model object gains the (zero-initialized) LoRA layers in place."""
    torch.manual_seed(seed)  # LoRA's A matrices are drawn at random
    config = LoraConfig(r=lora_rank, lora_alpha=lora_alpha or 2 * lora_rank, lora_dropout=0.0,
                        target_modules=target_modules or PAPER_TARGET_MODULES, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def _step_plan(encoded: list[EncodedTask], rng: np.random.Generator, tasks_per_step: int | None,
               targets_per_step: int | None):
    """The (task, prompt, targets, weights, scale) items of one step.

    Without sampling: every prompt of every task, all targets weighted by ``p*``, each
    prompt scaled by ``1 / n_prompts`` so a task's loss is its mean over prompts.
    ``tasks_per_step``: draw that many (task, prompt) pairs uniformly, scaled up by
    ``n_pairs / tasks_per_step`` so the summed loss stays an unbiased estimate of the full one.
    ``targets_per_step``: draw that many targets from ``p*`` (with replacement) and weight
    each distinct draw by its share of the draws, again an unbiased estimate.
    """
    pairs = [(i, j) for i, item in enumerate(encoded) for j in range(len(item.prompt_ids))]
    chosen, boost = pairs, 1.0
    if tasks_per_step is not None and tasks_per_step < len(pairs):
        picks = rng.choice(len(pairs), size=tasks_per_step, replace=False)
        chosen, boost = [pairs[k] for k in sorted(picks)], len(pairs) / tasks_per_step
    for i, j in chosen:
        item = encoded[i]
        p_star = item.task.probabilities
        indices, weights = np.arange(len(p_star)), p_star
        if targets_per_step is not None and targets_per_step < len(p_star):
            draws = rng.choice(len(p_star), size=targets_per_step, p=p_star)
            indices, counts = np.unique(draws, return_counts=True)
            weights = counts / targets_per_step
        yield item, item.prompt_ids[j], indices, weights, boost / len(item.prompt_ids)


def _step(model, encoded: list[EncodedTask], tokens_per_pass: int, rng: np.random.Generator,
          tasks_per_step: int | None = None, targets_per_step: int | None = None) -> dict[str, float]:
    """Accumulate one step's gradients; return the loss per task sampled (mean over its prompts)."""
    device = model.get_input_embeddings().weight.device
    plan = list(_step_plan(encoded, rng, tasks_per_step, targets_per_step))
    queries = [Query(prompt, [item.target_ids[k] for k in indices]) for item, prompt, indices, _, _ in plan]
    weights = [torch.tensor(weights * scale, dtype=torch.float32, device=device) for _, _, _, weights, scale in plan]
    losses = {}
    for (item, *_), loss in zip(plan, accumulate_gradients(model, queries, weights, tokens_per_pass=tokens_per_pass)):
        losses[item.task.name] = losses.get(item.task.name, 0.0) + loss
    return losses


def tune(model, tokenizer, tasks: list[Task], steps: int = 50, lr: float = 5e-5, tokens_per_pass: int = TOKENS_PER_PASS,
         lora_rank: int = 4, target_modules=None, early_stop_gamma: float | None = None,
         max_grad_norm: float = 1.0, seed: int = 0, progress: bool = True,
         tasks_per_step: int | None = None, targets_per_step: int | None = None,
         passing_gammas=(), on_passing=None):
    """Fine-tune LoRA adapters so the model's distribution over each task's targets matches ``p*``.

    steps: passes over all tasks' prompts (the paper: up to 50). lr: AdamW learning rate
    (paper 5e-5; ~5e-4 suits the 135M model). tokens_per_pass: tokens per forward pass, in place
    of the paper's batches of 32 targets (lower it if memory runs out, raise it on a big GPU).
    target_modules: LoRA targets, default the paper's q,k,v,o,gate,up,down (or "all-linear").
    early_stop_gamma: stop once loss <= (1 + gamma) * sum_tasks H(p*) (paper: 0.2 for open sets).
    tasks_per_step, targets_per_step: for many tasks on a small budget, each step uses a
    random subset of (task, prompt) pairs and of targets (drawn from ``p*``); the loss is
    then an unbiased but noisy estimate of the full loss (see :func:`_step_plan`).
    passing_gammas, on_passing: thresholds above ``early_stop_gamma``; where the loss first
    meets ``(1 + gamma) * sum H(p*)``, ``on_passing(gamma, peft_model, history)`` sees the
    model and history that a run with ``early_stop_gamma=gamma`` would end with (the runs are
    the same up to there), e.g. to save it; where the loss never meets it, the final ones.
    Returns ``(peft_model, history)``: history has one row per step with ``loss``,
    ``optimal_loss`` and ``loss/<task>`` columns (empty where a task was not drawn).
    Loss is recorded *before* each update.
    """
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique, got {names}")
    for knob, value in (("tasks_per_step", tasks_per_step), ("targets_per_step", targets_per_step)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{knob} must be a positive integer or None (no sampling), got {value!r}")
    passing = sorted(passing_gammas, reverse=True)
    if passing and (on_passing is None or early_stop_gamma is None or passing[-1] <= early_stop_gamma):
        raise ValueError(f"passing_gammas {passing} need on_passing and an early_stop_gamma below all of them; "
                         f"got early_stop_gamma={early_stop_gamma}")
    encoded = [encode_task(tokenizer, t) for t in tasks]
    peft_model = model if isinstance(model, PeftModel) else add_lora(model, lora_rank, None, target_modules, seed)
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr)
    optimal = sum(entropy(t.probabilities) for t in tasks)
    rng = np.random.default_rng(seed)
    rows = []
    for step in tqdm(range(steps), desc="tuning", unit="step", disable=not progress):
        optimizer.zero_grad(set_to_none=True)
        per_task = _step(peft_model, encoded, tokens_per_pass, rng, tasks_per_step, targets_per_step)
        loss = sum(per_task.values())
        rows.append({"step": step, "loss": loss, "optimal_loss": optimal,
                     **{f"loss/{name}": per_task.get(name, np.nan) for name in names}})
        while passing and loss <= optimal * (1 + passing[0]):
            on_passing(passing.pop(0), peft_model, pd.DataFrame(rows))
        if early_stop_gamma is not None and loss <= optimal * (1 + early_stop_gamma):
            break
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()
    for gamma in passing:  # never met: a run stopping there would have run every step too
        on_passing(gamma, peft_model, pd.DataFrame(rows))
    peft_model.eval()
    return peft_model, pd.DataFrame(rows)


def save_adapter(model: PeftModel, path) -> None:
    """Write the LoRA adapter as PEFT safetensors (``adapter_model.safetensors`` + config)."""
    model.save_pretrained(str(path), safe_serialization=True)


def load_adapter(base_model, path) -> PeftModel:
    """Attach a saved adapter to ``base_model`` (in eval mode). Loads safetensors, never pickle."""
    return PeftModel.from_pretrained(base_model, str(path), is_trainable=False).eval()


def fit_free_logits(p_star, steps: int = 300, lr: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Minimize Eq. 5 over free logits (no model): the loss in its purest form.

    p_star: target probabilities ``(T,)``. Adam from random logits. Returns one row per step
    with ``loss``, ``kl`` (KL(p*||p)) and the current probabilities ``p_0 .. p_{T-1}``.
    Example: ``fit_free_logits([0.5, 0.5]).iloc[-1]["kl"] < 1e-6``.
    """
    target = torch.as_tensor(np.asarray(p_star, float) / np.sum(p_star), dtype=torch.float64)
    logits = torch.randn(len(target), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    logits.requires_grad_()
    optimizer = torch.optim.Adam([logits], lr=lr)
    rows = []
    for step in range(steps):
        logprobs = logits.log_softmax(-1)
        loss = distribution_matching_loss(logprobs, target)
        kl = float((target * (target.clamp_min(1e-300).log() - logprobs)).sum())
        rows.append({"step": step, "loss": loss.item(), "kl": kl,
                     **{f"p_{i}": p for i, p in enumerate(logprobs.exp().tolist())}})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return pd.DataFrame(rows)
