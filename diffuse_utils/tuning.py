"""LoRA fine-tuning with the distribution-matching loss (the paper's Eq. 5).

``L = -sum_{y in T} p*(y|x) log p_theta(y|x) = KL(p* || p_theta) + H(p*)``, so the
smallest possible loss is ``H(p*)`` (the paper's printed ``- H`` is a sign typo).
Two update schedules (:class:`TuneSettings` ``update_per``):

- ``"prompt"`` (the paper's release, the default): each pass visits every (task, prompt)
  pair in a seeded shuffled order and makes one AdamW update per pair, on that prompt's
  loss over all its targets. A pass over the six-task set is as many updates as prompts.
- ``"pass"``: one update per pass, on the loss summed over tasks (each task's loss the
  mean over its prompts), optionally over a random subset of pairs and targets (CPU
  budgets).

An update's ``prompt + target`` sequences are scored together as a trie (``packing``):
every shared token prefix, prompts included, runs through the model once, in forward
passes of about ``tokens_per_pass`` tokens whose gradients are accumulated.

Example::

    model, history = tune(model, tokenizer, [rng_task], passes=30, lr=5e-4)
    history.tail(1)  # loss ~ 2.31, optimal_loss = ln 10 = 2.3026
    save_adapter(model, "artifacts/rng")
    load_adapter(base, "artifacts/rng")
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from peft import PeftModel
from tqdm.auto import tqdm

from .adapters import adapter, add_lora, load_adapter, rng_devices, save_adapter
from .encoding import encode_task
from .packing import accumulate_gradients
from .schedule import (
    TuneSettings,
    Update,
    plan_pass,
    tune_settings,
)
from .tasks import Task
from .tries import TOKENS_PER_PASS, Query

__all__ = [
    "TuneSettings",
    "tune_settings",
    "tune",
    "add_lora",
    "distribution_matching_loss",
    "save_adapter",
    "load_adapter",
    "adapter",
    "fit_free_logits",
]


def distribution_matching_loss(
    logprobs: torch.Tensor, p_star: torch.Tensor
) -> torch.Tensor:
    """Eq. 5: ``-sum_y p*(y) log p_theta(y)``. Shapes ``(T,)`` and ``(T,)`` -> scalar.

    Minimum ``H(p*)``, reached when ``p_theta(y) = p*(y)`` on every target.
    """
    return -(p_star * logprobs).sum()


def _trainable(model, settings: TuneSettings):
    """A PEFT model whose LoRA weights train: fresh adapters, or ``model``'s own
    (continued in place)."""
    if not isinstance(model, PeftModel):
        return add_lora(
            model,
            settings.lora_rank,
            settings.lora_alpha,
            settings.target_modules,
            settings.seed,
            settings.lora_dropout,
        )
    for name, param in model.named_parameters():
        param.requires_grad_("lora_" in name)
    return model


class TuningRun:
    """One tuning run's state: the model and its optimizer, the draws, the clock and the
    history. :func:`tune` makes one; its methods are the loop the book shows
    (``one_pass``, ``accumulate``, ``meets``)."""

    def __init__(
        self,
        model,
        encoded,
        settings: TuneSettings,
        tokens_per_pass: int,
        monitor,
        passing: list,
        on_passing,
    ):
        self.model, self.encoded, self.settings, self.monitor = (
            model,
            encoded,
            settings,
            monitor,
        )
        self.tokens_per_pass, self.passing, self.on_passing = (
            tokens_per_pass,
            passing,
            on_passing,
        )
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.params,
            lr=settings.lr,
            eps=settings.adam_eps,
            weight_decay=settings.weight_decay,
        )
        self.rng = np.random.default_rng(settings.seed)
        self.rows, self.updates, self.start, self.diagnostic_seconds = (
            [],
            0,
            time.perf_counter(),
            0.0,
        )

    def one_pass(self, index: int) -> bool:
        """Run pass ``index``; True when it meets the early stop. One update per pass
        checks before its update (the run ends with the model it measured); one update
        per prompt checks after the pass, as the release does."""
        before = self.settings.update_per == "pass"
        loss = optimal = 0.0
        for update in plan_pass(self.encoded, self.rng, self.settings):
            loss += self.accumulate(update, index)
            optimal += update.optimal
            if before and self.meets(loss, optimal):
                return True
            torch.nn.utils.clip_grad_norm_(self.params, self.settings.max_grad_norm)
            self.optimizer.step()
            self.rows[-1]["stepped"] = True
            self.updates += 1
        return not before and self.meets(loss, optimal)

    def accumulate(self, update: Update, index: int) -> float:
        """Gradients of one update's loss; a history row (diagnostics of the state
        before it)."""
        self.optimizer.zero_grad(set_to_none=True)
        row = {"pass": index, "update": self.updates, **self.diagnose(final=False)}
        queries = [
            Query(prompt, [item.target_ids[k] for k in indices])
            for item, prompt, indices, _ in update.items
        ]
        device = self.model.get_input_embeddings().weight.device
        weights = [
            torch.tensor(w, dtype=torch.float32, device=device)
            for *_, w in update.items
        ]
        per_task = {}
        losses = accumulate_gradients(
            self.model, queries, weights, tokens_per_pass=self.tokens_per_pass
        )
        for (item, *_), loss in zip(update.items, losses):
            per_task[item.task.name] = per_task.get(item.task.name, 0.0) + loss
        loss = sum(per_task.values())
        self.rows.append(
            {
                **row,
                "loss": loss,
                "optimal_loss": update.optimal,
                "stepped": False,
                **{
                    f"loss/{item.task.name}": per_task.get(item.task.name, np.nan)
                    for item in self.encoded
                },
                "seconds": time.perf_counter() - self.start,
                "diagnostic_seconds": self.diagnostic_seconds,
            }
        )
        return loss

    def diagnose(self, final: bool) -> dict:
        """The monitor's measurements of the current model when due (in eval mode, no
        gradients)."""
        if self.monitor is None or not (final or self.monitor.due(self.updates)):
            return {}
        start = time.perf_counter()
        self.model.eval()
        with torch.no_grad():
            measured = self.monitor.measure(self.model, self.updates, final)
        self.model.train()
        self.diagnostic_seconds += time.perf_counter() - start
        return measured

    def meets(self, loss: float, optimal: float) -> bool:
        """Hand the model to ``on_passing`` at each passing threshold met; True at the
        early stop."""
        while self.passing and loss <= optimal * (1 + self.passing[0]):
            self.on_passing(self.passing.pop(0), self.model, self.history())
        gamma = self.settings.early_stop_gamma
        return gamma is not None and loss <= optimal * (1 + gamma)

    def history(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def tune(
    model,
    tokenizer,
    tasks: list[Task],
    settings: TuneSettings | None = None,
    *,
    tokens_per_pass: int = TOKENS_PER_PASS,
    monitor=None,
    passing_gammas=(),
    on_passing=None,
    progress: bool = True,
    **overrides,
):
    """Fine-tune LoRA adapters so the model's distribution over each task's targets
    matches ``p*``.

    settings: a :class:`TuneSettings` (default: the release's), with ``overrides`` (its
    field names, e.g. ``passes=40, lr=5e-4``) replaced. A ``PeftModel`` is trained
    further, in place (its own LoRA shape kept), as the release continues the six-task
    adapter for biographies.
    tokens_per_pass: tokens per forward pass (memory; results agree to float rounding).
    monitor: e.g. :class:`~diffuse_utils.diagnostics.TrainingMonitor`; measures the
    model before every update it is due and once at the end, as columns of the history.
    passing_gammas, on_passing: thresholds above the early stop (any, in a run without
    one); where a pass first meets one, ``on_passing(gamma, peft_model, history)`` sees
    the model and history a run stopping there ends with (e.g. to save it); where none
    does, the final ones.
    Returns ``(peft_model, history)``: one row per update, with ``pass``, ``update``,
    ``loss`` (before the update) and its ``optimal_loss``, ``stepped`` (False where the
    early stop came first), ``loss/<task>``, ``seconds`` and ``diagnostic_seconds``
    (cumulative); ``history.stepped.sum()`` updates were made.
    """
    settings = tune_settings(settings, **overrides)
    passing = sorted(passing_gammas, reverse=True)
    _check_run(tasks, passing, on_passing, settings)
    encoded = [encode_task(tokenizer, t) for t in tasks]
    with torch.random.fork_rng(devices=rng_devices(model)):
        run = TuningRun(
            _trainable(model, settings),
            encoded,
            settings,
            tokens_per_pass,
            monitor,
            passing,
            on_passing,
        )
        run.model.train()
        for index in tqdm(
            range(settings.passes), desc="tuning", unit="pass", disable=not progress
        ):
            if run.one_pass(index):
                break
        final = run.diagnose(final=True)
        if final:
            run.rows.append(
                {
                    "pass": index,
                    "update": run.updates,
                    "stepped": False,
                    **final,
                    "seconds": time.perf_counter() - run.start,
                    "diagnostic_seconds": run.diagnostic_seconds,
                }
            )
    # never met: a run stopping there would have run every pass too
    for gamma in run.passing:
        on_passing(gamma, run.model, run.history())
    run.model.eval()
    return run.model, run.history()


def _check_run(
    tasks: list[Task], passing: list, on_passing, settings: TuneSettings
) -> None:
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"task names must be unique, got {names}")
    gamma = settings.early_stop_gamma
    if passing and (on_passing is None or (gamma is not None and passing[-1] <= gamma)):
        raise ValueError(
            f"passing_gammas {passing} need on_passing and an early_stop_gamma below "
            f"all of them (or none); got early_stop_gamma={gamma}"
        )


def fit_free_logits(
    p_star, steps: int = 300, lr: float = 0.1, seed: int = 0
) -> pd.DataFrame:
    """Minimize Eq. 5 over free logits (no model): the loss in its purest form.

    p_star: target probabilities ``(T,)``. Adam from random logits. Returns one row per
    step with ``loss``, ``kl`` (KL(p*||p)) and the current probabilities
    ``p_0 .. p_{T-1}``.
    Example: ``fit_free_logits([0.5, 0.5]).iloc[-1]["kl"] < 1e-6``.
    """
    target = torch.as_tensor(
        np.asarray(p_star, float) / np.sum(p_star), dtype=torch.float64
    )
    logits = torch.randn(
        len(target), generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )
    logits.requires_grad_()
    optimizer = torch.optim.Adam([logits], lr=lr)
    rows = []
    for step in range(steps):
        logprobs = logits.log_softmax(-1)
        loss = distribution_matching_loss(logprobs, target)
        kl = float(
            (target * (target.clamp_min(1e-300).log() - logprobs.detach())).sum()
        )
        rows.append(
            {
                "step": step,
                "loss": loss.item(),
                "kl": kl,
                **{f"p_{i}": p for i, p in enumerate(logprobs.exp().tolist())},
            }
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return pd.DataFrame(rows)
