"""Turning prompts and targets into token ids through the tokenizer's chat template.

One code path for every chat template: the end-of-turn marker is *read* from the
template by rendering a conversation whose assistant message is a sentinel and
taking what follows it (``<|im_end|>`` for SmolLM2, ``<end_of_turn>`` for Gemma,
``</s>`` for Llama-2). Appending it to every target makes the target set
prefix-free: ``{1}<|im_end|>`` is no longer a prefix of ``{10}<|im_end|>``.

A base model has no chat template: a task in completion form (``Task(completion=True)``)
is encoded as plain text, the prompt followed by each target and its end marker (the
task's ``stop`` text, or EOS). Asking for the chat form of a tokenizer without a
template raises :class:`NoChatTemplateError`, which says how to give the completion
form.

Example::

    prompt_ids = encode_prompt(tokenizer, "Pick a number.")  # [1, 9690, ...]
    encode_targets(tokenizer, ["{1}", "{10}"])  # [[..., 2], [..., 2]]
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from .tasks import Task, TaskError

_SENTINEL = "XQZSENTINELQZX"


class NoChatTemplateError(TaskError):
    """A prompt was to be chat-formatted with a tokenizer that has no chat template (a
    base model)."""


def has_chat_template(tokenizer) -> bool:
    """Whether ``tokenizer`` can chat-format a prompt (base models' tokenizers usually
    cannot)."""
    return bool(getattr(tokenizer, "chat_template", None))


def require_chat_template(tokenizer) -> None:
    """Raise :class:`NoChatTemplateError`, saying how to use completion form, if
    ``tokenizer`` has no template."""
    if not has_chat_template(tokenizer):
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise NoChatTemplateError(
            f"The tokenizer of {name!r} has no chat template (a base model?), so a "
            "prompt cannot be written as a chat turn. Give the task in completion "
            "form, a text the model continues and answers that follow it: "
            "Task(name, ['She rolled the 20-sided die. It landed on the number'], "
            "[' 1', ..., ' 20'], braces=False, completion=True, stop='.') (stop: "
            "the text that ends every answer; None: EOS); for sampling, sample(..., "
            "completion=True, stop='.'). Or load a chat (instruct) model."
        )


def end_of_turn_text(tokenizer) -> str:
    """The text the chat template writes right after an assistant message, stripped.

    Falls back to the EOS token for tokenizers without a chat template, or without a
    suffix.
    """
    if not has_chat_template(tokenizer):
        return tokenizer.eos_token
    conversation = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": _SENTINEL},
    ]
    rendered = tokenizer.apply_chat_template(conversation, tokenize=False)
    suffix = rendered.split(_SENTINEL, 1)[1].strip()
    return suffix or tokenizer.eos_token


def end_of_turn_ids(tokenizer) -> list[int]:
    """Token ids of :func:`end_of_turn_text` (usually one special token)."""
    return tokenizer(end_of_turn_text(tokenizer), add_special_tokens=False)["input_ids"]


def end_ids(tokenizer, completion: bool = False, stop: str | None = None) -> list[int]:
    """Token ids that end an answer: of ``stop`` if given, else EOS in completion form
    and :func:`end_of_turn_ids` in chat form. Example:
    ``end_ids(tok, completion=True) == [tok.eos_token_id]``."""
    if stop is not None:
        return tokenizer(stop, add_special_tokens=False)["input_ids"]
    if completion and tokenizer.eos_token_id is None:
        raise TaskError(
            "This tokenizer has no EOS token to end a completion: give the task a "
            "stop text (stop='.')."
        )
    return [tokenizer.eos_token_id] if completion else end_of_turn_ids(tokenizer)


# freed with their tokenizer
_VOCABULARIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def vocabulary_texts(tokenizer, skip_special_tokens: bool = False) -> list[str]:
    """The text of every token id, decoded alone (special tokens as ``''`` when
    skipped). Remembered per tokenizer while the tokenizer lives (a weak reference: not
    kept alive)."""
    texts = _VOCABULARIES.setdefault(tokenizer, {})
    if (skip_special_tokens, len(tokenizer)) not in texts:
        ids = [[i] for i in range(len(tokenizer))]
        texts[skip_special_tokens, len(tokenizer)] = tokenizer.batch_decode(
            ids, skip_special_tokens=skip_special_tokens
        )
    return texts[skip_special_tokens, len(tokenizer)]


def tokens_containing(tokenizer, text: str) -> frozenset[int]:
    """Ids of the vocabulary entries whose decoded text contains ``text``: a sampler
    that stops at ``text`` stops at any of them (``'.'`` is in ``'.'``, ``'.\n'``,
    ``'...'``). Special tokens are left out. Example:
    ``tokenizer.encode('.')[0] in tokens_containing(tokenizer, '.')``."""
    pieces = vocabulary_texts(tokenizer, skip_special_tokens=True)
    return frozenset(i for i, piece in enumerate(pieces) if text in piece)


def encode_prompt(
    tokenizer, prompt: str, response_prefix: str = "", completion: bool = False
) -> list[int]:
    """Chat-formatted prompt ids ending where the assistant starts writing.

    ``response_prefix`` is text pre-filled into the assistant turn (e.g. ``"{"``). The
    BOS token is kept only if the template writes it. ``completion``: the prompt is
    plain text the model continues (``prompt + response_prefix``, with the BOS token if
    the tokenizer adds one); without it, a tokenizer with no chat template raises
    :class:`NoChatTemplateError`.
    """
    if completion:
        ids = tokenizer(prompt + response_prefix, add_special_tokens=True)["input_ids"]
        # a tokenizer that adds EOS
        return ids[:-1] if len(ids) > 1 and ids[-1] == tokenizer.eos_token_id else ids
    require_chat_template(tokenizer)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        tokenize=False,
        add_generation_prompt=True,
    )
    return tokenizer(text + response_prefix, add_special_tokens=False)["input_ids"]


def encode_targets(
    tokenizer,
    responses: list[str],
    append_end_of_turn: bool = True,
    completion: bool = False,
    stop: str | None = None,
) -> list[list[int]]:
    """Token ids of each response, followed by the end-of-turn ids.

    ``append_end_of_turn=False`` exists to show why it is needed (notebook 02).
    ``stop``: the end marker is this text, tokenized with the response (``' 7' + '.'``,
    as the model would write it); ``completion`` (without ``stop``): the end marker is
    EOS.
    """
    if append_end_of_turn and stop is not None:
        return [
            tokenizer(r + stop, add_special_tokens=False)["input_ids"]
            for r in responses
        ]
    suffix = end_ids(tokenizer, completion) if append_end_of_turn else []
    return [
        tokenizer(r, add_special_tokens=False)["input_ids"] + suffix for r in responses
    ]


END_OF_TURN_FIX = (
    "End every target with the end-of-turn token (encode_targets(..., "
    "append_end_of_turn=True))."
)
STOP_FIX = (
    "The end marker (the task's stop text, or EOS) must end every target: give a "
    "stop text that cannot continue a target, e.g. '.' or a newline after numbers."
)
OPENINGS_FIX = (
    "Openings (end_of_turn=False) get no end-of-turn token, so no target may start "
    "another: give every target the same number of closed fields, as chapter 5's "
    "biography openings do."
)


def check_prefix_free(
    target_ids: list[list[int]],
    names: list[str],
    fix: str = END_OF_TURN_FIX,
    where: str = "",
) -> None:
    """Raise :class:`TaskError` naming two targets where one's ids start the other's.

    ``fix`` ends the message with how to repair the targets; ``where`` (e.g.
    ``"Task 'rng'"``) starts it. Sorting makes any prefix pair adjacent, so this is
    O(n log n).
    """
    order = sorted(range(len(target_ids)), key=lambda i: target_ids[i])
    for a, b in zip(order, order[1:]):
        shorter = target_ids[a]
        if target_ids[b][: len(shorter)] == shorter:
            raise TaskError(
                f"{where + ': ' if where else ''}Targets are not prefix-free: "
                f"{names[a]!r} (ids {shorter}) is a prefix of {names[b]!r} (ids "
                f"{target_ids[b]}), so p({names[a]!r}) counts part of "
                f"p({names[b]!r}). {fix}"
            )


@dataclass
class EncodedTask:
    """Token ids of a task for one tokenizer: one prompt id list per phrasing, one
    id list per target (response + end of turn), and ``p*`` aligned with them."""

    task: Task
    prompt_ids: list[list[int]]
    target_ids: list[list[int]]


def encode_task(tokenizer, task: Task, append_end_of_turn: bool = True) -> EncodedTask:
    """Encode every prompt and target of ``task`` and check the targets are prefix-free.

    The end marker follows each target (the end-of-turn ids; in completion form EOS; or
    the task's ``stop`` text) unless ``append_end_of_turn`` is off or the task's targets
    are openings of longer answers (``task.end_of_turn`` false). A chat-form task on a
    tokenizer without a chat template raises :class:`NoChatTemplateError` before
    anything is tokenized."""
    prefix = task.response_prefix
    if not task.completion:
        require_chat_template(tokenizer)
    prompt_ids = [
        encode_prompt(tokenizer, p, prefix, task.completion) for p in task.prompts
    ]
    continuations = [r[len(prefix) :] for r in task.responses]
    ended = append_end_of_turn and task.end_of_turn
    target_ids = encode_targets(
        tokenizer, continuations, ended, task.completion, task.stop
    )
    fix = (
        OPENINGS_FIX
        if not task.end_of_turn
        else STOP_FIX
        if task.completion or task.stop
        else END_OF_TURN_FIX
    )
    check_prefix_free(target_ids, task.targets, fix, where=f"Task {task.name!r}")
    return EncodedTask(task, prompt_ids, target_ids)
