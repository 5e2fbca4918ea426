"""The encoding is pinned for three chat templates: ChatML (embedded), Gemma and Llama-2."""
import copy

import pytest

from diffuse_utils import Task, TaskError, check_prefix_free, encode_prompt, encode_targets, encode_task
from diffuse_utils.encoding import end_of_turn_ids, end_of_turn_text

GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] "
    "| trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}")
LLAMA2_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'] "
    "| trim + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] | trim + ' ' + "
    "eos_token }}{% endif %}{% endfor %}")


def with_template(tokenizer, template, special, bos, eos):
    """A copy of ``tokenizer`` with another chat template and its special tokens added."""
    other = copy.deepcopy(tokenizer)
    other.add_special_tokens({"additional_special_tokens": special, "bos_token": bos, "eos_token": eos})
    other.chat_template = template
    return other


@pytest.fixture
def gemma(tokenizer):
    return with_template(tokenizer, GEMMA_TEMPLATE, ["<start_of_turn>", "<end_of_turn>"], "<bos>", "<eos>")


@pytest.fixture
def llama2(tokenizer):
    return with_template(tokenizer, LLAMA2_TEMPLATE, [], "<s>", "</s>")


def test_embedded_chatml_encoding_is_pinned(tokenizer):
    assert end_of_turn_text(tokenizer) == "<|im_end|>"
    assert end_of_turn_ids(tokenizer) == [2]
    assert encode_targets(tokenizer, ["{1}", "{10}"]) == [[107, 33, 109, 2], [107, 33, 32, 109, 2]]
    prompt = tokenizer.decode(encode_prompt(tokenizer, "Hi"))
    assert prompt == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                      "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert tokenizer.decode(encode_prompt(tokenizer, "Hi", response_prefix="{")).endswith("assistant\n{")


def test_gemma_template(gemma):
    eot = gemma.convert_tokens_to_ids("<end_of_turn>")
    assert end_of_turn_text(gemma) == "<end_of_turn>"
    assert end_of_turn_ids(gemma) == [eot]
    assert gemma.decode(encode_prompt(gemma, "Hi")) == "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    targets = encode_targets(gemma, ["{1}", "{10}"])
    assert [t[-1] for t in targets] == [eot, eot]
    assert gemma.decode(targets[1]) == "{10}<end_of_turn>"


def test_llama2_template(llama2):
    eos = llama2.convert_tokens_to_ids("</s>")
    assert end_of_turn_text(llama2) == "</s>"
    assert end_of_turn_ids(llama2) == [eos]
    assert llama2.decode(encode_prompt(llama2, " Hi ")) == "<s>[INST] Hi [/INST]"
    assert llama2.decode(encode_targets(llama2, ["{7}"])[0]) == "{7}</s>"


def test_prefix_free_check_names_the_clashing_pair(tokenizer):
    responses = ["{1", "{10", "{2"]
    raw = encode_targets(tokenizer, responses, append_end_of_turn=False)
    with pytest.raises(TaskError, match=r"'\{1' \(ids \[.*\]\) is a prefix of '\{10'"):
        check_prefix_free(raw, responses)
    check_prefix_free(encode_targets(tokenizer, responses), responses)  # end of turn fixes it


@pytest.mark.parametrize("fixture", ["tokenizer", "gemma", "llama2"])
def test_encode_task_is_prefix_free_for_every_template(fixture, request):
    tok = request.getfixturevalue(fixture)
    task = Task("rng", ["Pick a number from 1 to 100."], [str(i) for i in range(1, 101)])
    encoded = encode_task(tok, task)
    assert len(encoded.target_ids) == 100 and all(t[-1:] == end_of_turn_ids(tok) for t in encoded.target_ids)


def test_encode_task_with_response_prefix(tokenizer):
    task = Task("t", ["p"], ["1", "10"], response_prefix="{")
    encoded = encode_task(tokenizer, task)
    assert tokenizer.decode(encoded.prompt_ids[0]).endswith("assistant\n{")
    assert [tokenizer.decode(t) for t in encoded.target_ids] == ["1}<|im_end|>", "10}<|im_end|>"]


def test_openings_must_be_prefix_free_by_themselves(tokenizer):
    openings = Task(name="openings", prompts=["Write."], targets=["{Ada}", "{Ada}\n{Obi}"], braces=False,
                    end_of_turn=False)
    with pytest.raises(TaskError, match=r"Task 'openings': Targets are not prefix-free.*end_of_turn=False"):
        encode_task(tokenizer, openings)
    closed = Task(name="closed", prompts=["Write."], targets=["{Ada}\n{", "{Bo}\n{"], braces=False, end_of_turn=False)
    assert [ids[-1] for ids in encode_task(tokenizer, closed).target_ids] != [2, 2]


@pytest.fixture
def plain(tokenizer):
    """SmolLM2's tokenizer without its chat template, as a base model's tokenizer comes."""
    other = copy.deepcopy(tokenizer)
    other.chat_template = None
    return other


def test_chat_form_without_template_raises_the_package_error_saying_how(plain, monkeypatch):
    from diffuse_utils import NoChatTemplateError, range_task
    monkeypatch.setattr(plain, "apply_chat_template", lambda *a, **k: pytest.fail("transformers was called"))
    for call in (lambda: encode_task(plain, range_task(1, 10)), lambda: encode_prompt(plain, "Pick.")):
        with pytest.raises(NoChatTemplateError) as info:
            call()
        message = str(info.value)
        assert "has no chat template" in message and "completion=True" in message and "stop=" in message
    assert end_of_turn_text(plain) == plain.eos_token == "<|im_end|>"  # the fallback marker, no template needed


def test_completion_form_is_the_plain_text_then_target_then_marker(plain):
    from diffuse_utils import DIE_PROMPT
    task = Task("die", [DIE_PROMPT], [f" {i}" for i in range(1, 21)], braces=False, completion=True, stop=".")
    encoded = encode_task(plain, task)
    assert encoded.prompt_ids[0] == plain(DIE_PROMPT)["input_ids"]  # no template, no special token for GPT-2 BPE
    texts = [plain.decode(encoded.prompt_ids[0] + ids) for ids in encoded.target_ids]
    assert texts == [f"{DIE_PROMPT} {i}." for i in range(1, 21)]
    eos_ended = encode_task(plain, Task("die", [DIE_PROMPT], [" 1", " 10"], braces=False, completion=True))
    assert [ids[-1] for ids in eos_ended.target_ids] == [plain.eos_token_id] * 2
    prefixed = Task("die", [DIE_PROMPT], [" 1", " 10"], braces=False, completion=True, response_prefix=" ", stop="\n")
    assert plain.decode(encode_task(plain, prefixed).prompt_ids[0]) == DIE_PROMPT + " "


def test_completion_form_still_checks_prefix_free(plain, tokenizer):
    unended = Task("die", ["It landed on"], [" 1", " 10"], braces=False, completion=True, end_of_turn=False)
    for tok in (plain, tokenizer):  # the chat model in completion form too
        with pytest.raises(TaskError, match=r"Targets are not prefix-free: ' 1' .* is a prefix of ' 10'"):
            encode_task(tok, unended)


def test_tokens_containing_a_stop_text(tokenizer):
    from diffuse_utils.encoding import tokens_containing
    dots = tokens_containing(tokenizer, ".")
    assert tokenizer.convert_tokens_to_ids(".") in dots and tokenizer("...", add_special_tokens=False)["input_ids"][0] in dots
    assert all("." in tokenizer.decode([i]) for i in dots) and tokenizer.convert_tokens_to_ids("a") not in dots
    assert not any("." in tokenizer.decode([i]) for i in range(0, len(tokenizer), 97) if i not in dots and i > 16)
