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

from .decoding import warped_logprobs
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


def common_prefix_length(target_ids: list[list[int]]) -> int:
    """Tokens every target starts with (e.g. ``{``), leaving at least one token in each target."""
    shortest = min(len(t) for t in target_ids)
    length = 0
    while length < shortest - 1 and all(t[length] == target_ids[0][length] for t in target_ids):
        length += 1
    return length


def folded_prompt_state(model, prompt_ids: list[int], target_ids: list[list[int]], temperature: float = 1.0,
                        top_p: float = 1.0, min_p: float | None = None):
    """:func:`prompt_state` of the prompt *plus the targets' common prefix*, run once.

    Every target starts with ``{`` (and often more), so that part is computed once here
    instead of once per target. Returns ``(prefix_logprob, last_logprobs, kv, rests)``:
    ``log p(common prefix | prompt)`` (0-dim), the state after it, and the targets without it;
    ``log p(y|x) = prefix_logprob + log p(rest | prompt + prefix)``.
    """
    common = common_prefix_length(target_ids)
    prefix = target_ids[0][:common]
    device = model.get_input_embeddings().weight.device
    output = model(input_ids=torch.tensor([prompt_ids + prefix], device=device), use_cache=True,
                   logits_to_keep=common + 1)
    logprobs = warped_logprobs(output.logits[0], temperature, top_p, min_p)
    kv = [(layer.keys, layer.values) for layer in output.past_key_values.layers]
    prefix_logprob = logprobs[torch.arange(common, device=device), torch.tensor(prefix, device=device,
                                                                                  dtype=torch.long)].sum()
    return prefix_logprob, logprobs[-1], kv, [t[common:] for t in target_ids]


def length_order(target_ids: list[list[int]]) -> list[int]:
    """Target indices sorted by length, then tokens: mini-batches of similar length need
    little padding, and targets sharing a prefix sit together."""
    return sorted(range(len(target_ids)), key=lambda i: (len(target_ids[i]), target_ids[i]))


def expanded_cache(model, kv, batch: int) -> DynamicCache:
    """A fresh cache holding the prompt's keys/values broadcast to ``batch`` rows (no copy)."""
    data = [(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv]
    return DynamicCache(data, config=model.config)


def batch_logprobs(model, last_logprobs, kv, target_ids: list[list[int]], temperature: float = 1.0,
                   top_p: float = 1.0, min_p: float | None = None) -> torch.Tensor:
    """``log p(y|x)`` for a mini-batch of targets given the prompt state. Shape ``(B,)``.

    With ``temperature`` != 1 (or ``top_p`` < 1, ``min_p``) this is the probability of ``y``
    under sampling with that decoding (see ``decoding.warp_logits``), so the sampler's
    distribution is scored exactly; a target that the filter removes gets ``-inf``.

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
                   position_ids=positions, use_cache=True).logits
    picked = warped_logprobs(logits, temperature, top_p, min_p).gather(-1, ids[:, 1:, None])[..., 0]
    mask = torch.arange(1, width, device=device)[None, :] < lengths[:, None]
    return first + torch.where(mask, picked, torch.zeros_like(picked)).sum(-1)


def shared_prefix_logprobs(model, prompt_ids: list[int], target_ids: list[list[int]],
                           batch_size: int = 64, temperature: float = 1.0, top_p: float = 1.0,
                           min_p: float | None = None) -> torch.Tensor:
    """``log p(y|x)`` for all targets, prompt and common target prefix computed once.
    Shape ``(len(target_ids),)``, in the order of ``target_ids``."""
    warp = dict(temperature=temperature, top_p=top_p, min_p=min_p)
    prefix_logprob, last_logprobs, kv, rests = folded_prompt_state(model, prompt_ids, target_ids, **warp)
    order = length_order(rests)
    parts = [batch_logprobs(model, last_logprobs, kv, [rests[k] for k in order[i:i + batch_size]], **warp)
             for i in range(0, len(order), batch_size)]
    scores = torch.empty(len(order), device=last_logprobs.device)
    scores[torch.tensor(order, device=last_logprobs.device)] = torch.cat(parts)
    return prefix_logprob + scores


def naive_logprobs(model, prompt_ids: list[int], target_ids: list[list[int]], temperature: float = 1.0,
                   top_p: float = 1.0, min_p: float | None = None) -> torch.Tensor:
    """Reference: score each ``prompt + target`` as one full sequence. Shape ``(T,)``."""
    device = model.get_input_embeddings().weight.device
    scores = []
    for target in target_ids:
        ids = torch.tensor([prompt_ids + target], device=device)
        logprobs = warped_logprobs(model(input_ids=ids).logits[0], temperature, top_p, min_p)
        positions = torch.arange(len(prompt_ids) - 1, ids.shape[1] - 1, device=device)
        scores.append(logprobs[positions, ids[0, len(prompt_ids):]].sum())
    return torch.stack(scores)


@torch.no_grad()
def target_logprobs(model, tokenizer, task: Task, prompt_index: int = 0, batch_size: int = 64,
                    temperature: float = 1.0, top_p: float = 1.0, min_p: float | None = None) -> pd.Series:
    """``log p(y|x)`` in nats for every target of ``task`` on one of its prompts.

    ``temperature``, ``top_p``, ``min_p`` score the distribution that sampling with those
    settings draws from (``-inf`` for an answer the filter makes impossible).
    Returns a Series indexed by target (the answer without braces), named ``logprob``.
    """
    encoded = encode_task(tokenizer, task)
    scores = shared_prefix_logprobs(model, encoded.prompt_ids[prompt_index], encoded.target_ids, batch_size,
                                    temperature, top_p, min_p)
    return pd.Series(scores.cpu().numpy().astype(float), index=pd.Index(task.targets, name="target"),
                     name="logprob")


def valid_mass(logprobs: pd.Series) -> float:
    """Total probability the model puts on the valid targets (the rest is other text)."""
    return float(np.exp(np.logaddexp.reduce(logprobs.to_numpy())))


def conditional_distribution(logprobs: pd.Series) -> pd.Series:
    """``p(y | x, y in T)``: the model's distribution renormalized over the valid targets."""
    values = logprobs.to_numpy()
    total = np.logaddexp.reduce(values)
    probs = np.exp(values - total) if np.isfinite(total) else np.full(len(values), np.nan)
    return pd.Series(probs, index=logprobs.index, name="probability")


def score_prompts(model, tokenizer, task: Task, batch_size: int = 64, temperature: float = 1.0, top_p: float = 1.0,
                  min_p: float | None = None) -> pd.DataFrame:
    """Exact summary per prompt of ``task``: valid mass, entropy of the conditional distribution
    over targets, and ``KL(p* || conditional)``. One row per prompt, indexed by prompt number."""
    encoded = encode_task(tokenizer, task)
    rows = []
    for index, prompt_ids in enumerate(encoded.prompt_ids):
        with torch.no_grad():
            scores = shared_prefix_logprobs(model, prompt_ids, encoded.target_ids, batch_size, temperature, top_p,
                                            min_p)
        logprobs = pd.Series(scores.cpu().numpy().astype(float), index=task.targets)
        mass = valid_mass(logprobs)  # 0 when a decoding filter removes every target: KL is then infinite
        conditional = conditional_distribution(logprobs)
        rows.append({"prompt": index, "valid_mass": mass, "entropy": entropy(conditional) if mass > 0 else np.nan,
                     "kl": kl_divergence(task.probabilities, conditional.to_numpy()) if mass > 0 else np.inf})
    return pd.DataFrame(rows).set_index("prompt")
