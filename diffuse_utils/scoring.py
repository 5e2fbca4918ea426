"""Exact log-probabilities of every target (the paper's Eq. 1).

``log p(y|x) = sum_i log p(y_i | x, y_<i)``, computed for all targets at once by
``packing``: every distinct prefix of the ``prompt + target`` token sequences runs
through the model once (a trie), so a prompt costs its tokens once and a target only
the tokens it does not share with another. The same path, with gradients, is the
forward pass of tuning (``tuning``). The sampler reuses :func:`prompt_state` to prefill
a prompt once for a whole batch.

Example::

    logprobs = target_logprobs(model, tokenizer, rng_task)  # Series: '1' -> -8.1, ...
    valid_mass(logprobs)  # 0.0003
    conditional_distribution(logprobs)  # sums to 1 over '1'..'10'
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .decoding import warped_logprobs
from .encoding import encode_task
from .metrics import entropy, kl_divergence
from .packing import packed_logprobs
from .tasks import Task
from .tries import TOKENS_PER_PASS, Query


def prompt_state(model, prompt_ids: list[int], temperature: float = 1.0):
    """Run the prompt once. Returns ``(last_logprobs (V,), kv)`` where ``kv`` is a list
    of per-layer ``(key, value)`` tensors of shape ``(1, heads, P, head_dim)``.
    ``last_logprobs`` is the next-token distribution at ``temperature``."""
    device = model.get_input_embeddings().weight.device
    output = model(
        input_ids=torch.tensor([prompt_ids], device=device),
        use_cache=True,
        logits_to_keep=1,
    )
    kv = [(layer.keys, layer.values) for layer in output.past_key_values.layers]
    return (output.logits[0, -1].float() / temperature).log_softmax(-1), kv


def shared_prefix_logprobs(
    model,
    prompt_ids: list[int],
    target_ids: list[list[int]],
    tokens_per_pass: int = TOKENS_PER_PASS,
    temperature: float = 1.0,
    top_p: float = 1.0,
    min_p: float | None = None,
) -> torch.Tensor:
    """``log p(y|x)`` for all targets of one prompt, each shared token prefix computed
    once. Shape ``(len(target_ids),)``, in the order of ``target_ids``."""
    return packed_logprobs(
        model,
        [Query(prompt_ids, target_ids)],
        tokens_per_pass=tokens_per_pass,
        temperature=temperature,
        top_p=top_p,
        min_p=min_p,
    )[0]


def naive_logprobs(
    model,
    prompt_ids: list[int],
    target_ids: list[list[int]],
    temperature: float = 1.0,
    top_p: float = 1.0,
    min_p: float | None = None,
) -> torch.Tensor:
    """Reference: score each ``prompt + target`` as one full sequence. Shape
    ``(T,)``."""
    device = model.get_input_embeddings().weight.device
    scores = []
    for target in target_ids:
        ids = torch.tensor([prompt_ids + target], device=device)
        logprobs = warped_logprobs(
            model(input_ids=ids).logits[0], temperature, top_p, min_p
        )
        positions = torch.arange(len(prompt_ids) - 1, ids.shape[1] - 1, device=device)
        scores.append(logprobs[positions, ids[0, len(prompt_ids) :]].sum())
    return torch.stack(scores)


@torch.no_grad()
def target_logprobs(
    model,
    tokenizer,
    task: Task,
    prompt_index: int = 0,
    tokens_per_pass: int = TOKENS_PER_PASS,
    temperature: float = 1.0,
    top_p: float = 1.0,
    min_p: float | None = None,
) -> pd.Series:
    """``log p(y|x)`` in nats for every target of ``task`` on one of its prompts.

    ``temperature``, ``top_p``, ``min_p`` score the distribution that sampling with
    those settings draws from (``-inf`` for an answer the filter makes impossible).
    Returns a Series indexed by target (the answer without braces), named ``logprob``.
    """
    encoded = encode_task(tokenizer, task)
    scores = shared_prefix_logprobs(
        model,
        encoded.prompt_ids[prompt_index],
        encoded.target_ids,
        tokens_per_pass,
        temperature,
        top_p,
        min_p,
    )
    return pd.Series(
        scores.cpu().numpy().astype(float),
        index=pd.Index(task.targets, name="target"),
        name="logprob",
    )


def valid_mass(logprobs: pd.Series) -> float:
    """Total probability the model puts on the valid targets (the rest is other
    text)."""
    return float(np.exp(np.logaddexp.reduce(logprobs.to_numpy())))


def conditional_distribution(logprobs: pd.Series) -> pd.Series:
    """``p(y | x, y in T)``: the model's distribution renormalized over the valid
    targets."""
    values = logprobs.to_numpy()
    total = np.logaddexp.reduce(values)
    probs = (
        np.exp(values - total) if np.isfinite(total) else np.full(len(values), np.nan)
    )
    return pd.Series(probs, index=logprobs.index, name="probability")


def score_prompts(
    model,
    tokenizer,
    task: Task,
    tokens_per_pass: int = TOKENS_PER_PASS,
    temperature: float = 1.0,
    top_p: float = 1.0,
    min_p: float | None = None,
) -> pd.DataFrame:
    """Exact summary per prompt of ``task``: valid mass, entropy of the conditional
    distribution over targets, and ``KL(p* || conditional)``. One row per prompt,
    indexed by prompt number. All prompts are scored together, so what they share (the
    chat template) runs once."""
    encoded = encode_task(tokenizer, task)
    with torch.no_grad():
        per_prompt = packed_logprobs(
            model,
            [Query(prompt, encoded.target_ids) for prompt in encoded.prompt_ids],
            tokens_per_pass=tokens_per_pass,
            temperature=temperature,
            top_p=top_p,
            min_p=min_p,
        )
    rows = []
    for index, scores in enumerate(per_prompt):
        logprobs = pd.Series(scores.cpu().numpy().astype(float), index=task.targets)
        # 0 when a decoding filter removes every target: KL is then infinite
        mass = valid_mass(logprobs)
        conditional = conditional_distribution(logprobs)
        rows.append(
            {
                "prompt": index,
                "valid_mass": mass,
                "entropy": entropy(conditional) if mass > 0 else np.nan,
                "kl": kl_divergence(task.probabilities, conditional.to_numpy())
                if mass > 0
                else np.inf,
            }
        )
    return pd.DataFrame(rows).set_index("prompt")
