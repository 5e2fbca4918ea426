import math

import numpy as np
import pandas as pd
import pytest
import torch

from diffuse_utils import RNG_PROMPT
from diffuse_utils.baselines import draw_from_lists, parse_verbalized, verbalized_distribution, verbalized_prompt
from diffuse_utils.answers import canonicalizer
from diffuse_utils.decoding import SampleSettings
from diffuse_utils.utility import _named, capital_questions, perplexity, reference_text

from conftest import make_tiny_model


def test_parse_verbalized_formats():
    assert parse_verbalized("{3}: 0.2\n{7}: 0.5\n{9}: 0.3") == pytest.approx({"3": 0.2, "7": 0.5, "9": 0.3})
    assert parse_verbalized("Sure!\n{Emma} - 30%\n{Liam} (10%)") == pytest.approx({"Emma": 0.75, "Liam": 0.25})
    assert parse_verbalized("{a}: 1\n{a}: 1\n{b}: 2") == pytest.approx({"a": 0.5, "b": 0.5})
    assert parse_verbalized("{a}: 0\n{b}: 0") == {"a": 0.5, "b": 0.5}
    assert parse_verbalized("I like 7 best.") is None
    assert "list 5 different possible answers" in verbalized_prompt(RNG_PROMPT, 5)
    assert verbalized_prompt(RNG_PROMPT).endswith("{answer}: probability")
    with pytest.raises(ValueError, match="k must be at least 1"):
        verbalized_prompt(RNG_PROMPT, 0)


def test_draw_from_lists_follows_the_list_and_counts_failures():
    texts = ["{x}: 0.8\n{y}: 0.2"] * 4000 + ["no list"]
    answers = draw_from_lists(texts, seed=0)
    assert answers == draw_from_lists(texts, seed=0)
    assert answers[-1] is None
    assert np.mean([a == "x" for a in answers[:-1]]) == pytest.approx(0.8, abs=0.02)


def test_verbalized_distribution_averages_lists_on_valid_answers():
    canonical = canonicalizer(["1", "2", "3"])
    mass = verbalized_distribution(["{1}: 0.5\n{2}: 0.5", "{3}: 0.5\n{zz}: 0.5", "nothing"], canonical)
    assert mass == pytest.approx({"1": 1 / 6, "2": 1 / 6, "3": 1 / 6})
    assert canonical(" 2 ") == "2" and canonical("4") is None and canonical(None) is None


def test_reference_text_and_perplexity_by_hand(tokenizer):
    text = reference_text(2000)
    assert len(text) == 2000 and text == reference_text(2000)
    model = make_tiny_model(len(tokenizer))
    short = text[:200]
    ids = tokenizer(short, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        nll, count = 0.0, 0
        for start in range(0, len(ids), 16):
            chunk = torch.tensor([ids[start:start + 16]])
            if chunk.shape[1] < 2:
                continue
            logprobs = model(input_ids=chunk).logits[0, :-1].log_softmax(-1)
            nll -= logprobs.gather(-1, chunk[0, 1:, None]).sum().item()
            count += chunk.shape[1] - 1
    assert perplexity(model, tokenizer, short, window=16) == pytest.approx(math.exp(nll / count), rel=1e-5)


def test_capital_questions_and_matching():
    questions = capital_questions(20, seed=0)
    assert len(questions) == 20 and questions == capital_questions(20, seed=0)
    assert questions != capital_questions(20, seed=1)
    assert dict(capital_questions(500))["France"] == "Paris"
    assert _named("The capital of France is Paris.", "Paris") and not _named("Parisian", "Paris")


def compare_method(output_dir, model, tokenizer, probe, method, n, **speed):
    """``compare_probes`` on one probe with ``n`` generations: its row."""
    from diffuse_utils.baselines import compare_probes
    return compare_probes(output_dir, model, tokenizer, [probe], method, [n], **speed)[0]


def test_compare_method_rows_for_decoding_and_verbalized(tokenizer, tmp_path):
    from diffuse_utils.baselines import Method, Probe
    model = make_tiny_model(len(tokenizer))
    probe = Probe("LETTERS", "ab", "Pick a or b.", canonicalizer(["a", "b"]), ["a", "b"], True)
    hot = compare_method(tmp_path, model, tokenizer, probe,
                         Method.decoding("temperature 2", SampleSettings(max_new_tokens=2)), n=4)
    assert hot["method"] == "temperature 2" and hot["n"] == 4 and math.isnan(hot["list_failure"])
    assert 0 <= hot["kl"] and 0 < hot["valid_mass"] < 1
    listed = compare_method(tmp_path, model, tokenizer, probe, Method.verbalized(2, max_new_tokens=3), n=3)
    assert listed["list_failure"] == 1.0  # a random model writes no parsable list: every draw is invalid
    assert listed["valid_rate"] == 0.0 and listed["kl"] == float("inf") and listed["valid_mass"] == 0.0


def test_probes_compared_together_give_the_rows_of_each_alone(tokenizer, tmp_path):
    from diffuse_utils.baselines import Method, Probe, compare_probes
    model = make_tiny_model(len(tokenizer))
    probes = [Probe("LETTERS", "ab", "Pick a or b.", canonicalizer(["a", "b"]), ["a", "b"], True),
              Probe("LETTERS", "abc", "Pick a, b or c, please.", canonicalizer(["a", "b", "c"]), ["a", "b", "c"], False)]
    for method in (Method("m", SampleSettings(max_new_tokens=2, temperature=2.0)),
                   Method("m", SampleSettings(max_new_tokens=3), verbalized_k=2),
                   Method("m", SampleSettings(max_new_tokens=3), seed_length=4)):
        together = compare_probes(tmp_path / "together", model, tokenizer, probes, method, [4, 3])
        alone = [compare_method(tmp_path / "alone", model, tokenizer, probe, method, n)
                 for probe, n in zip(probes, (4, 3))]
        assert pd.DataFrame(together).equals(pd.DataFrame(alone))


def test_unknown_decoding_method_is_named():
    from diffuse_utils.baselines import decoding_settings
    assert decoding_settings("temperature 2") == {"temperature": 2.0}
    with pytest.raises(KeyError, match="unknown decoding method 'min-p 0.1'; known: .*'min-p 0.1, temperature 2'"):
        decoding_settings("min-p 0.1")


def test_a_filter_that_removes_every_answer_gives_infinite_kl(tokenizer, tmp_path):
    from diffuse_utils.baselines import Method, Probe
    model = make_tiny_model(len(tokenizer))
    probe = Probe("LETTERS", "ab", "Pick a or b.", canonicalizer(["a", "b"]), ["a", "b"], True)
    row = compare_method(tmp_path, model, tokenizer, probe, Method("min-p 1", SampleSettings(max_new_tokens=2, min_p=1.0)),
                         n=2)
    assert row["valid_mass"] == 0.0 and row["kl"] == float("inf")  # only the greedy path survives min-p = 1


def test_seed_prompt_parser_and_implied_answer_by_hand():
    from diffuse_utils.string_seed import implied_answer, parse_seeded, seed_prompt
    listed = seed_prompt(RNG_PROMPT, ["1", "2", "3"], length=6)
    assert listed.startswith(RNG_PROMPT) and "random string of 6 letters" in listed
    assert "divide the sum by 3" in listed and "in this list: 1, 2, 3." in listed
    assert "list:" not in seed_prompt(RNG_PROMPT) and "let the string choose" in seed_prompt(RNG_PROMPT)
    assert parse_seeded("[Xk3b] so the answer is {7}.") == ("Xk3b", "7")
    assert parse_seeded("{2} first, then [a1] and { 5 } and {6}") == ("a1", "6")   # the last braces after the string
    assert parse_seeded("[a1] but no answer {") == ("a1", None)
    assert parse_seeded("{4} without a string") == (None, None)
    assert implied_answer("ab", ["x", "y", "z"]) == "x"          # 97 + 98 = 195 = 65 * 3
    assert implied_answer("A", ["x", "y", "z"]) == "z"           # 65 = 21 * 3 + 2
    with pytest.raises(ValueError, match="at least two options"):
        seed_prompt(RNG_PROMPT, ["1"])
    with pytest.raises(ValueError, match="length must be at least 1"):
        seed_prompt(RNG_PROMPT, length=0)


def test_seeded_row_counts_failures_consistency_and_sampled_kl():
    from diffuse_utils.baselines import Method, Probe, _method_row
    targets = ["1", "2", "3"]
    probe = Probe("RNG", "rng-3", "Pick 1, 2 or 3 like this: {number}.", canonicalizer(targets), targets, True)
    # "ab" implies "1" (195 % 3 == 0), "A" implies "3" (65 % 3 == 2), "b" implies "3" (98 % 3 == 2)
    texts = ["[ab] {1}", "[A] {3}", "[b] {1}", "[ab] {9}", "{2} no string", "[A] no answer", "[ab] {number}"]
    row = _method_row(None, None, probe, Method.seeded(6), texts, {})
    assert row["seed_failure"] == pytest.approx(2 / 7)
    assert row["valid_rate"] == pytest.approx(3 / 7)          # {9} is not an option, {number} echoes the prompt
    assert row["seed_checked"] == 3 and row["seed_consistency"] == pytest.approx(2 / 3)
    assert row["seed_chance"] == pytest.approx(1 / 3) and math.isnan(row["list_failure"])
    assert row["kl"] == float("inf")                           # '2' was never drawn
    both = _method_row(None, None, probe, Method("m", seed_length=6), ["[ab] {1}", "[A] {2}", "[b] {2}", "[x] {3}"], {})
    q = np.array([1, 2, 1]) / 4
    assert both["kl"] == pytest.approx(float(np.sum(np.log((1 / 3) / q)) / 3))


def test_seeded_method_on_a_random_model_and_exclusive_options(tokenizer, tmp_path):
    from diffuse_utils.baselines import Method, Probe
    model = make_tiny_model(len(tokenizer))
    probe = Probe("LETTERS", "ab", "Pick a or b.", canonicalizer(["a", "b"]), ["a", "b"], True)
    row = compare_method(tmp_path, model, tokenizer, probe, Method.seeded(4, max_new_tokens=3), n=3)
    assert row["seed_failure"] == 1.0 and row["valid_rate"] == 0.0   # three random tokens write no string and answer
    assert row["kl"] == float("inf") and row["seed_checked"] == 0 and math.isnan(row["seed_consistency"])
    with pytest.raises(ValueError, match="set at most one of them"):
        Method("both", verbalized_k=2, seed_length=4)
