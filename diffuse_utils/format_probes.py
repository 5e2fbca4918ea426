"""Format against substance: does a tuned model end its turn after one field, and what
does it write when it may not?

A six-task adapter is tuned on answers of one braced field followed by the end of turn.
Asked for a biography (six fields), such a model may learn "stop after one field"
(format) without or with "spread out" (substance). Two tools separate them:

- :func:`turn_ending_probe`, exact: after the biography prompt and a pre-filled first
  field ``{Name}``, the probability of ending the turn next against that of a newline
  (how the next field opens in the prompt's format), and the most likely next token;
- sampling with ``SampleSettings(closing_fields=6)``: the end of turn is forbidden until
  six braces have closed, so every model writes six fields and their diversity can be
  compared.

Example::

    probe = turn_ending_probe(
        model, tokenizer, BIOGRAPHY_PROMPT, ["Ada Obi", "Lee Chan"]
    )
    probe[["p_end_of_turn", "p_newline"]].mean()
    texts = sample(
        model,
        tokenizer,
        BIOGRAPHY_PROMPT,
        n=60,
        max_new_tokens=BIOGRAPHY_TOKENS,
        response_prefix="{",
        closing_fields=6,
    )
    # share stopping after one field, coverage of each attribute
    biography_format(texts)
"""

from __future__ import annotations

import pandas as pd
import torch

from .biographies import attribute_summary, parse_biographies
from .decoding import answer_ends
from .encoding import encode_prompt, vocabulary_texts
from .scoring import prompt_state


@torch.no_grad()
def turn_ending_probe(
    model, tokenizer, prompt: str, first_fields: list[str]
) -> pd.DataFrame:
    """One row per first field ``f``: after ``prompt`` and the pre-filled answer
    ``{f}``, the exact next-token probability of ending the turn (``p_end_of_turn``), of
    a token that starts with a newline (``p_newline``: the next field's opening in the
    prompt's format), and the most likely next token (``top_token``)."""
    texts = vocabulary_texts(tokenizer)
    newline = torch.tensor([t.startswith("\n") for t in texts])
    ends = sorted(answer_ends(tokenizer))
    rows = []
    for field in first_fields:
        logprobs, _ = prompt_state(
            model, encode_prompt(tokenizer, prompt, "{" + field + "}")
        )
        probs = logprobs.exp().cpu()[: len(texts)]
        rows.append(
            {
                "first_field": field,
                "p_end_of_turn": float(probs[ends].sum()),
                "p_newline": float(probs[newline[: len(probs)]].sum()),
                "top_token": texts[int(probs.argmax())],
            }
        )
    return pd.DataFrame(rows)


def biography_format(texts: list[str]) -> dict:
    """What a set of biographies looks like: ``one_field`` (share that stop after the
    first braced field), ``well_formed`` (six fields or more), ``copies_example`` (share
    naming the prompt's example person), and ``<attribute>_coverage``, distinct values
    of first name, last name, birth place and birth year over all generations
    (:func:`~diffuse_utils.biographies.attribute_summary`: malformed ones give the
    fields they have)."""
    frame = parse_biographies(texts)
    covered = attribute_summary(
        frame, ("first_name", "last_name", "birth_place", "birth_year")
    )["coverage"]
    return {
        "n": len(texts),
        "one_field": float((frame["fields"] == 1).mean()),
        "well_formed": float((frame["fields"] >= 6).mean()),
        "copies_example": float(frame["copies_example"].mean()),
        **{f"{attribute}_coverage": int(value) for attribute, value in covered.items()},
    }
