"""Exact log-probabilities of every target (the paper's Eq. 1), with a shared prompt.

``log p(y|x) = sum_i log p(y_i | x, y_<i)``. The prompt ``x`` is run once; its
key/value cache is expanded (a view, no copy) over a mini-batch of targets, so
each target costs only its own tokens. :func:`shared_prefix_logprobs` is also the
forward pass of tuning: with gradients enabled it returns a differentiable
result, and :func:`prompt_state` lets the caller back-propagate through the
prompt once for all mini-batches (see ``tuning.accumulate_task_gradients``).

Example::

    logprobs = target_logprobs(model, tokenizer, rng_task)   # Series: '1' -> -8.1, ...
    valid_mass(logprobs)                                     # 0.0003
    conditional_distribution(logprobs)                       # sums to 1 over '1'..'10'
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from transformers import DynamicCache

from .encoding import encode_task
from .metrics import entropy, kl_divergence
from .tasks import Task


def prompt_state(model, prompt_ids: list[int], temperature: float = 1.0):
    """Run the prompt once. Returns ``(last_logprobs (V,), kv)`` where ``kv`` is a list
    of per-layer ``(key, value)`` tensors of shape ``(1, heads, P, head_dim)``.
    ``last_logprobs`` is the next-token distribution at ``temperature``."""
    device = model.get_input_embeddings().weight.device
    output = model(input_ids=torch.tensor([prompt_ids], device=device), use_cache=True, logits_to_keep=1)
    kv = [(layer.keys, layer.values) for layer in output.past_key_values.layers]
    return (output.logits[0, -1].float() / temperature).log_softmax(-1), kv


def expanded_cache(model, kv, batch: int) -> DynamicCache:
    """A fresh cache holding the prompt's keys/values broadcast to ``batch`` rows (no copy)."""
    data = [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv]
    return DynamicCache(data, config=model.config)


def batch_logprobs(model, last_logprobs, kv, target_ids: list[list[int]], temperature: float = 1.0) -> torch.Tensor:
    """``log p(y|x)`` for a mini-batch of targets given the prompt state. Shape ``(B,)``.

    With ``temperature`` != 1 this is the probability of ``y`` under temperature sampling
    (every token's logits divided by it), so the sampler's distribution is scored exactly.

    Targets are right-padded; a padded position is never attended by a real one,
    so the padding value does not matter and is masked out of the sum.
    """
    device = last_logprobs.device
    lengths = torch.tensor([len(t) for t in target_ids], device=device)
    width = int(lengths.max())
    ids = torch.zeros(len(target_ids), width, dtype=torch.long, device=device)
    for row, target in enumerate(target_ids):
        ids[row, :len(target)] = torch.tensor(target, device=device)
    first = last_logprobs[ids[:, 0]]
    if width == 1:
        return first
    prompt_len = kv[0][0].shape[-2]
    inputs = ids[:, :-1]
    positions = torch.arange(prompt_len, prompt_len + width - 1, device=device).expand_as(inputs)
    logits = model(input_ids=inputs, past_key_values=expanded_cache(model, kv, len(target_ids)),
                   attention_mask=torch.ones(len(target_ids), prompt_len + width - 1, device=device,
                                             dtype=torch.long),
                   position_ids=positions, use_cache=True).logits.float() / temperature
    picked = logits.gather(-1, ids[:, 1:, None])[..., 0] - logits.logsumexp(-1)
    mask = torch.arange(1, width, device=device)[None, :] < lengths[:, None]
    return first + (picked * mask).sum(-1)


def shared_prefix_logprobs(model, prompt_ids: list[int], target_ids: list[list[int]],
                           batch_size: int = 64, temperature: float = 1.0) -> torch.Tensor:
    """``log p(y|x)`` for all targets, prompt computed once. Shape ``(len(target_ids),)``."""
    last_logprobs, kv = prompt_state(model, prompt_ids, temperature)
    parts = [batch_logprobs(model, last_logprobs, kv, target_ids[i:i + batch_size], temperature)
             for i in range(0, len(target_ids), batch_size)]
    return torch.cat(parts)


def naive_logprobs(model, prompt_ids: list[int], target_ids: list[list[int]], temperature: float = 1.0) -> torch.Tensor:
    """Reference: score each ``prompt + target`` as one full sequence. Shape ``(T,)``."""
    device = model.get_input_embeddings().weight.device
    scores = []
    for target in target_ids:
        ids = torch.tensor([prompt_ids + target], device=device)
        logprobs = (model(input_ids=ids).logits[0].float() / temperature).log_softmax(-1)
        positions = torch.arange(len(prompt_ids) - 1, ids.shape[1] - 1, device=device)
        scores.append(logprobs[positions, ids[0, len(prompt_ids):]].sum())
    return torch.stack(scores)


@torch.no_grad()
def target_logprobs(model, tokenizer, task: Task, prompt_index: int = 0, batch_size: int = 64,
                    temperature: float = 1.0) -> pd.Series:
    """``log p(y|x)`` in nats for every target of ``task`` on one of its prompts.

    ``temperature`` scores the distribution that sampling at that temperature draws from.
    Returns a Series indexed by target (the answer without braces), named ``logprob``.
    """
    encoded = encode_task(tokenizer, task)
    scores = shared_prefix_logprobs(model, encoded.prompt_ids[prompt_index], encoded.target_ids, batch_size,
                                    temperature)
    return pd.Series(scores.cpu().numpy().astype(float), index=pd.Index(task.targets, name="target"),
                     name="logprob")


def valid_mass(logprobs: pd.Series) -> float:
    """Total probability the model puts on the valid targets (the rest is other text)."""
    return float(np.exp(np.logaddexp.reduce(logprobs.to_numpy())))


def conditional_distribution(logprobs: pd.Series) -> pd.Series:
    """``p(y | x, y in T)``: the model's distribution renormalized over the valid targets."""
    values = logprobs.to_numpy()
    probs = np.exp(values - np.logaddexp.reduce(values))
    return pd.Series(probs, index=logprobs.index, name="probability")


def score_prompts(model, tokenizer, task: Task, batch_size: int = 64, temperature: float = 1.0) -> pd.DataFrame:
    """Exact summary per prompt of ``task``: valid mass, entropy of the conditional distribution
    over targets, and ``KL(p* || conditional)``. One row per prompt, indexed by prompt number."""
    encoded = encode_task(tokenizer, task)
    rows = []
    for index, prompt_ids in enumerate(encoded.prompt_ids):
        with torch.no_grad():
            scores = shared_prefix_logprobs(model, prompt_ids, encoded.target_ids, batch_size, temperature)
        logprobs = pd.Series(scores.cpu().numpy().astype(float), index=task.targets)
        conditional = conditional_distribution(logprobs)
        rows.append({"prompt": index, "valid_mass": valid_mass(logprobs), "entropy": entropy(conditional),
                     "kl": kl_divergence(task.probabilities, conditional.to_numpy())})
    return pd.DataFrame(rows).set_index("prompt")
