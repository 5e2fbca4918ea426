"""Format against substance: does a tuned model end its turn after one field, and what does it
write when it may not?

A six-task adapter is tuned on answers of one braced field followed by the end of turn. Asked
for a biography (six fields), such a model may learn "stop after one field" (format) without
or with "spread out" (substance). Two tools separate them:

- :func:`turn_ending_probe`, exact: after the biography prompt and a pre-filled first field
  ``{Name}``, the probability of ending the turn next against that of a newline (how the next
  field opens in the prompt's format), and the most likely next token;
- :func:`sample_closing_fields`: sampling where the end of turn is forbidden until ``fields``
  braces have closed, so every model writes six fields and their diversity can be compared.

Example::

    probe = turn_ending_probe(model, tokenizer, BIOGRAPHY_PROMPT, ["Ada Obi", "Lee Chan"])
    probe[["p_end_of_turn", "p_newline"]].mean()
    texts = sample_closing_fields(model, tokenizer, BIOGRAPHY_PROMPT, n=60)
    biography_format(texts)          # share stopping after one field, coverage of each attribute
"""
from __future__ import annotations

import pandas as pd
import torch
from tqdm.auto import tqdm

from .biographies import attribute_summary, parse_biographies
from .encoding import encode_prompt, vocabulary_texts
from .sampling import answer_ends, draw_tokens, sample_uniforms
from .scoring import prompt_state

@torch.no_grad()
def turn_ending_probe(model, tokenizer, prompt: str, first_fields: list[str]) -> pd.DataFrame:
    """One row per first field ``f``: after ``prompt`` and the pre-filled answer ``{f}``, the exact
    next-token probability of ending the turn (``p_end_of_turn``), of a token that starts with a
    newline (``p_newline``: the next field's opening in the prompt's format), and the most likely
    next token (``top_token``)."""
    texts = vocabulary_texts(tokenizer)
    newline = torch.tensor([t.startswith("\n") for t in texts])
    ends = sorted(answer_ends(tokenizer))
    rows = []
    for field in first_fields:
        logprobs, _ = prompt_state(model, encode_prompt(tokenizer, prompt, "{" + field + "}"))
        probs = logprobs.exp().cpu()[:len(texts)]
        rows.append({"first_field": field, "p_end_of_turn": float(probs[ends].sum()),
                     "p_newline": float(probs[newline[:len(probs)]].sum()), "top_token": texts[int(probs.argmax())]})
    return pd.DataFrame(rows)


@torch.no_grad()
def sample_closing_fields(model, tokenizer, prompt: str, n: int, fields: int = 6, response_prefix: str = "{",
                          max_new_tokens: int = 112, seed: int = 0, batch_size: int = 60,
                          progress: bool = True) -> list[str]:
    """``n`` answers to ``prompt`` at temperature 1 where ending the turn is forbidden until
    ``fields`` closing braces have been written (after that, and at ``max_new_tokens``, answers end
    as usual). Same uniforms as :func:`~diffuse_utils.sampling.sample` (``seed``), so a model that
    never tries to end early writes what it would write unconstrained, up to batching rounding.
    Each text includes ``response_prefix``."""
    device = model.get_input_embeddings().weight.device
    closes = torch.tensor([t.count("}") for t in vocabulary_texts(tokenizer)], device=device)
    ending = answer_ends(tokenizer)
    ends = torch.tensor(sorted(ending), device=device)
    prompt_ids = encode_prompt(tokenizer, prompt, response_prefix)
    uniforms = sample_uniforms(seed, n, max_new_tokens)
    out = []
    for start in tqdm(range(0, n, batch_size), desc="sampling, end of turn held", disable=not progress):
        rows = min(batch_size, n - start)
        output = model(input_ids=torch.tensor([prompt_ids] * rows, device=device), use_cache=True, logits_to_keep=1)
        cache, logits = output.past_key_values, output.logits[:, -1].float()
        is_end = torch.isin(torch.arange(logits.shape[1], device=device), ends)   # (V,): the ids held back
        closed = torch.full((rows,), response_prefix.count("}"), device=device)
        done = torch.zeros(rows, dtype=torch.bool, device=device)
        tokens = [[] for _ in range(rows)]
        for step in range(max_new_tokens):
            held = (closed < fields)[:, None] & is_end[None]
            chosen = draw_tokens(logits.masked_fill(held, float("-inf")).softmax(-1), uniforms[start:start + rows, step])
            for row, token, finished in zip(tokens, chosen.tolist(), done.tolist()):
                if not finished:
                    row.append(token)
            done |= torch.isin(chosen, ends)
            closed += closes[chosen.clamp(max=len(closes) - 1)]
            if done.all():
                break
            output = model(input_ids=chosen[:, None], past_key_values=cache, use_cache=True)
            cache, logits = output.past_key_values, output.logits[:, -1].float()
        out += [response_prefix + tokenizer.decode([t for t in row if t not in ending]) for row in tokens]
    return out


def biography_format(texts: list[str]) -> dict:
    """What a set of biographies looks like: ``one_field`` (share that stop after the first braced
    field), ``well_formed`` (six fields or more), ``copies_example`` (share naming the prompt's
    example person), and ``<attribute>_coverage``, distinct values of first name, last name, birth
    place and birth year over all generations (:func:`~diffuse_utils.biographies.attribute_summary`:
    malformed ones give the fields they have)."""
    frame = parse_biographies(texts)
    covered = attribute_summary(frame, ("first_name", "last_name", "birth_place", "birth_year"))["coverage"]
    return {"n": len(texts), "one_field": float((frame["fields"] == 1).mean()),
            "well_formed": float((frame["fields"] >= 6).mean()), "copies_example": float(frame["copies_example"].mean()),
            **{f"{attribute}_coverage": int(value) for attribute, value in covered.items()}}
