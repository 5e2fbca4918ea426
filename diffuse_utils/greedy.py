"""Greedy answers to many prompts, decoded together.

A CPU decoding one prompt at a time is mostly idle; :func:`greedy_completions` left-pads
a batch of prompts of different lengths, masks the padding, and decodes them together,
each row seeing only its own prompt.

Example::

    greedy_completions(model, tokenizer, ["Name a fruit.", "Name a day."])
    # ['Apple.', 'Monday.']
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .decoding import SHORT_ANSWER_TOKENS, decode_answer, halting_ids
from .encoding import encode_prompt


@torch.no_grad()
def greedy_completions(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int = SHORT_ANSWER_TOKENS,
    batch_size: int = 32,
    progress: bool = False,
) -> list[str]:
    """The greedy answer to each of ``prompts`` (chat-formatted), ``batch_size`` prompts
    decoded together.

    Prompts of different lengths are left-padded and masked, so each row sees only its
    own prompt; the answers are those of ``sample(..., n=1, temperature=0)`` one prompt
    at a time (up to float rounding), at a fraction of the cost: a batch of one keeps a
    CPU mostly idle.
    """
    if batch_size < 1 or max_new_tokens < 1:
        raise ValueError(
            f"batch_size and max_new_tokens must be >= 1; got {batch_size}, "
            f"{max_new_tokens}."
        )
    device = model.get_input_embeddings().weight.device
    ends, halt_ids = halting_ids(tokenizer, device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(ends)
    encoded = [encode_prompt(tokenizer, prompt) for prompt in prompts]
    texts = []
    for start in tqdm(
        range(0, len(encoded), batch_size),
        desc="greedy",
        unit="batch",
        disable=not progress,
    ):
        chunk = encoded[start : start + batch_size]
        width = max(map(len, chunk))
        inputs = torch.tensor(
            [[pad] * (width - len(ids)) + ids for ids in chunk], device=device
        )
        mask = torch.tensor(
            [[0] * (width - len(ids)) + [1] * len(ids) for ids in chunk], device=device
        )
        rows, done, cache = (
            [[] for _ in chunk],
            torch.zeros(len(chunk), dtype=torch.bool, device=device),
            None,
        )
        for _ in range(max_new_tokens):
            positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -inputs.shape[1] :]
            output = model(
                input_ids=inputs,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            cache, chosen = output.past_key_values, output.logits[:, -1].argmax(-1)
            for row, token, finished in zip(rows, chosen.tolist(), done.tolist()):
                if not finished:
                    row.append(token)
            done |= torch.isin(chosen, halt_ids)
            if done.all():
                break
            inputs, mask = (
                chosen[:, None],
                torch.cat([mask, mask.new_ones(len(chunk), 1)], dim=1),
            )
        texts += [decode_answer(tokenizer, row, ends) for row in rows]
    return texts
