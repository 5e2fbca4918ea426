"""Turning prompts and targets into token ids through the tokenizer's chat template.

One code path for every chat template: the end-of-turn marker is *read* from the
template by rendering a conversation whose assistant message is a sentinel and
taking what follows it (``<|im_end|>`` for SmolLM2, ``<end_of_turn>`` for Gemma,
``</s>`` for Llama-2). Appending it to every target makes the target set
prefix-free: ``{1}<|im_end|>`` is no longer a prefix of ``{10}<|im_end|>``.

Example::

    prompt_ids = encode_prompt(tokenizer, "Pick a number.")   # [1, 9690, ...]
    encode_targets(tokenizer, ["{1}", "{10}"])                  # [[..., 2], [..., 2]]
"""
from __future__ import annotations

from dataclasses import dataclass

from .tasks import Task, TaskError

_SENTINEL = "XQZSENTINELQZX"


def end_of_turn_text(tokenizer) -> str:
    """The text the chat template writes right after an assistant message, stripped.

    Falls back to the EOS token for tokenizers without a chat template suffix.
    """
    conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": _SENTINEL}]
    rendered = tokenizer.apply_chat_template(conversation, tokenize=False)
    suffix = rendered.split(_SENTINEL, 1)[1].strip()
    return suffix or tokenizer.eos_token


def end_of_turn_ids(tokenizer) -> list[int]:
    """Token ids of :func:`end_of_turn_text` (usually one special token)."""
    return tokenizer(end_of_turn_text(tokenizer), add_special_tokens=False)["input_ids"]


def encode_prompt(tokenizer, prompt: str, response_prefix: str = "") -> list[int]:
    """Chat-formatted prompt ids ending where the assistant starts writing.

    ``response_prefix`` is text pre-filled into the assistant turn (e.g. ``"{"``).
    The BOS token is kept only if the template writes it.
    """
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    return tokenizer(text + response_prefix, add_special_tokens=False)["input_ids"]


def encode_targets(tokenizer, responses: list[str], append_end_of_turn: bool = True) -> list[list[int]]:
    """Token ids of each response, followed by the end-of-turn ids.

    ``append_end_of_turn=False`` exists to show why it is needed (notebook 02).
    """
    suffix = end_of_turn_ids(tokenizer) if append_end_of_turn else []
    return [tokenizer(r, add_special_tokens=False)["input_ids"] + suffix for r in responses]


END_OF_TURN_FIX = "End every target with the end-of-turn token (encode_targets(..., append_end_of_turn=True))."
OPENINGS_FIX = ("Openings (end_of_turn=False) get no end-of-turn token, so no target may start another: give every "
                "target the same number of closed fields, as chapter 5's biography openings do.")


def check_prefix_free(target_ids: list[list[int]], names: list[str], fix: str = END_OF_TURN_FIX,
                      where: str = "") -> None:
    """Raise :class:`TaskError` naming two targets where one's ids start the other's.

    ``fix`` ends the message with how to repair the targets; ``where`` (e.g. ``"Task 'rng'"``)
    starts it. Sorting makes any prefix pair adjacent, so this is O(n log n).
    """
    order = sorted(range(len(target_ids)), key=lambda i: target_ids[i])
    for a, b in zip(order, order[1:]):
        shorter = target_ids[a]
        if target_ids[b][:len(shorter)] == shorter:
            raise TaskError(
                f"{where + ': ' if where else ''}Targets are not prefix-free: {names[a]!r} (ids {shorter}) is a "
                f"prefix of {names[b]!r} (ids {target_ids[b]}), so p({names[a]!r}) counts part of "
                f"p({names[b]!r}). {fix}")


@dataclass
class EncodedTask:
    """Token ids of a task for one tokenizer: one prompt id list per phrasing, one
    id list per target (response + end of turn), and ``p*`` aligned with them."""
    task: Task
    prompt_ids: list[list[int]]
    target_ids: list[list[int]]


def encode_task(tokenizer, task: Task, append_end_of_turn: bool = True) -> EncodedTask:
    """Encode every prompt and target of ``task`` and check the targets are prefix-free.

    The end-of-turn ids follow each target unless ``append_end_of_turn`` is off or the task's
    targets are openings of longer answers (``task.end_of_turn`` false)."""
    prefix = task.response_prefix
    prompt_ids = [encode_prompt(tokenizer, p, prefix) for p in task.prompts]
    continuations = [r[len(prefix):] for r in task.responses]
    target_ids = encode_targets(tokenizer, continuations, append_end_of_turn and task.end_of_turn)
    check_prefix_free(target_ids, task.targets, END_OF_TURN_FIX if task.end_of_turn else OPENINGS_FIX,
                      where=f"Task {task.name!r}")
    return EncodedTask(task, prompt_ids, target_ids)
