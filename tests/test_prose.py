"""scripts/check_prose.py flags typed verdicts in the book's prose; the README's benchmark figures
are the recorded ones."""
import json
import re
from pathlib import Path

import pytest

from conftest import load_script

ROOT = Path(__file__).resolve().parent.parent
check_prose = load_script("scripts/check_prose.py")

# Sentences of the book when issue 32 was filed (commit 44188dc), copied verbatim: each states a
# direction, an attribution or a quantity that nothing computed behind it.
TYPED_VERDICTS = [
    ('01_measuring_bias cell 44',
     "With a 2B-13B model on a GPU (set `model_name`), valid rates approach 100% and the numbers become directly comparable with the paper's."),
    ('01_measuring_bias cell 14',
     'With the `{` prefix only a few percent of samples are valid, so this check draws its own, larger sample, cut after as many tokens as the longest target needs (enough to decide the event).'),
    ('01_measuring_bias cell 17',
     'The exact method is both faster and far more precise: with a valid mass of a few percent, 1000 samples hold only a handful of valid answers, while scoring measures every one of the ten probabilities to float precision.'),
    ('01_measuring_bias cell 44',
     "Parsing braces anywhere in the text (the paper's method) counts more answers than the strict event, because the small model often wraps its number in chatter."),
    ('01_measuring_bias cell 44',
     "The bias is not only a chat model's (footnote 2)."),
    ('01_measuring_bias cell 6',
     "The valid mass is the share of all the model's probability that lands on a valid answer at all: small models mostly answer with something else."),
    ('03_lora_tuning cell 29',
     'Meanwhile the memorization ratio goes from {glue:text}`names_memorization_start:.2f` to {glue:text}`names_memorization_end:.2f` (a fall of {glue:text}`names_memorization_fall:.0%`): the model gains on the listed names faster than on names like them: the list is learned along with the distribution.'),
    ('03_lora_tuning cell 54',
     'Whether the gap to the paper\'s "majority" at $\\gamma = 0.2$ comes from the learning rate, the rank or this model is not settled by the two rates of this chapter; chapter 7 varies both and measures each run the same way.'),
    ('03_lora_tuning cell 36',
     'The later it stops (smaller $\\gamma$), the closer the model gets to $p^*$: more of its answers are valid names, but more of them are names from the list.'),
    ('04_leave_one_out cell 19',
     'The valid rate matters as much as the entropy: the base model rarely answers in the asked format at all, so its entropy is computed over few answers.'),
    ('04_leave_one_out cell 29',
     "SmolLM2-135M puts its answer between braces in a few percent of generations, where the paper's 7B-13B models nearly always do; our baseline entropies are over a handful of answers, so they are low for a different reason than the paper's (format failure, not only mode collapse)."),
    ('04_leave_one_out cell 8',
     'Chapter 7 chose this schedule and rate by a stated rule: of the regimes it tried, it transfers most to a left-out family while keeping the exact knowledge probe within its tolerance.'),
    ('05_synthetic_biographies cell 43',
     '**Tuning on other tasks did not transfer here; it backfired.**'),
    ('05_synthetic_biographies cell 43',
     '**Tuning on balanced openings spreads every attribute.**'),
    ('05_synthetic_biographies cell 43',
     "Only {glue:text}`match_rate_Tuned-ID:.0%` of Tuned-ID's birth places are cities GeoNames knows (the base model's: {glue:text}`match_rate_baseline:.0%`, of far fewer places): the model invents plausible-sounding towns."),
    ('05_synthetic_biographies cell 20',
     'Without the `{` pre-filled (`response_prefix=""`, the paper\'s setting) SmolLM2-135M almost never starts with a braced field at all, so its biographies could not be compared; the paper\'s 7B-13B models follow the format without help.'),
    ('06_is_tuning_worth_it cell 25',
     'Heating the model spreads its answers, but mostly into junk: the share of valid answers falls as the temperature rises.'),
    ('06_is_tuning_worth_it cell 27',
     "Of the {glue:text}`qa_change_max:+.0f` points the greedy probe moves under {glue:text}`qa_change_max_model`, the knowledge probe accounts for {glue:text}`largest_knowledge_change:+.0f`; the remaining {glue:text}`largest_format_part:+.0f` are the form of the answers: {glue:text}`braced_largest:.0%` of that adapter's greedy answers are in braces, the format it was tuned on, against {glue:text}`braced_base:.0%` of the base model's."),
    ('06_is_tuning_worth_it cell 36',
     'The exact knowledge probe moves by {glue:text}`largest_knowledge_change:+.0f` points under that adapter ({glue:text}`knowledge_beyond_2se` of {glue:text}`n_adapters` adapters beyond two standard errors): the rest of the greedy fall, {glue:text}`largest_format_part:+.0f` points, is the form of the answers, not what the model knows.'),
    ('90_performance cell 17',
     "Chapter 5's long biography prompt gains the most: its openings fit one row, so the prompt runs once per step instead of once per opening."),
    ('90_performance cell 17',
     "The package holds a whole pass of {glue:text}`tokens_per_pass` tokens (several rows) for its backward pass, so its peak memory is above its earlier versions' (which held a mini-batch of 32 short targets) though well below the naive path's."),
    ('90_performance cell 9',
     'Chapter 6 draws only 25 samples from each of 21 prompts, and a step costs nearly as much for 25 rows as for 100 on a CPU (it reads every weight either way).'),
]

# Misquotes of the paper from the same issue that carry a word the check reads ("about 210" for the
# paper's 210 tuples, "several times" for four, three and 1.5 times, ...).
MISQUOTES = [
    ('01_measuring_bias cell 31',
     'The paper notes that the bias does not come from instruction tuning: GPT-2, asked to continue "She rolled the 20-sided die. It landed on the number", is just as far from uniform.'),
    ('05_synthetic_biographies cell 0',
     '**Tuned-ID**, tuned on about 210 biography *openings* (name, gender, birth date, birth place, profession) with balanced gender, birth year and birth place, and no accomplishments.'),
    ('05_synthetic_biographies cell 10',
     'The paper\'s Section 6.2 tunes on ~210 "programmatically generated tuples of categorical attributes".'),
    ('book/intro.md',
     '{cite:t}`zhang2024forcing` show that this bias is large in 7B-13B chat models (Llama-2-13B-chat puts over 60% of its mass on *five*), and that a small LoRA fine-tune {cite}`hu2022lora` with a *distribution-matching* loss over a set of valid answers fixes it, in a way that transfers to tasks and prompts never seen in tuning, up to generating synthetic biographies with several times more distinct names, places and careers.'),
    ('book/results.md',
     'close to 100% (not reported)'),
]


@pytest.mark.parametrize("where, sentence", TYPED_VERDICTS + MISQUOTES, ids=lambda x: x[:40])
def test_each_typed_sentence_of_issue_32_is_flagged(where, sentence):
    flags = check_prose.flag_sentences(sentence)
    assert len(flags) == 1 and flags[0].words, f"{where}: not flagged: {sentence}"


def test_a_glued_word_is_computed_and_not_flagged():
    assert check_prose.flag_sentences(
        "The paper's tuned models reach 2.28-2.30 nats; ours is {glue:text}`rng_vs_paper` that range.") == []
    assert check_prose.flag_sentences("Its status: {glue:text}`gpu_status`.") == []


def test_a_glued_number_does_not_cover_a_typed_word_beside_it():
    flags = check_prose.flag_sentences("Only {glue:text}`match_rate:.0%` of the places are real.")
    assert [f.words for f in flags] == [("only",)]
    flags = check_prose.flag_sentences("Scoring is {glue:text}`speedup`x faster than sampling.")
    assert [f.words for f in flags] == [("faster",)]


def test_an_allowlisted_quotation_is_not_flagged():
    allowlist = check_prose.load_allowlist()
    quotation = 'The paper reports "the majority of outputs" outside the targets.'
    assert check_prose.flag_sentences(quotation)
    assert check_prose.flag_sentences(quotation, allowlist=allowlist) == []
    assert all(entry["reason"].strip() for entry in allowlist)


def test_markdown_is_split_into_sentences_it_can_read():
    markdown = """## Figure 2b: the ranges

- First item, e.g. 154-204, ends here. Second sentence of the item.
- Asked to continue "She rolled the die. It landed on", the model says `{1}. Then`.

| quantity | paper |
| --- | --- |
| valid rate | (not reported) |

$$
a = b. \\quad C
$$
See {cite}`zhang2024forcing` and [the release](https://example.org/a.b). Done.

```python
x = 1. Y = 2
```
"""
    shown = [s for s, _ in check_prose.sentences(markdown)]
    assert shown == [
        "Figure 2b: the ranges",
        "First item, e.g. 154-204, ends here.", "Second sentence of the item.",
        'Asked to continue "She rolled the die. It landed on", the model says `{1}. Then`.',
        "quantity", "paper", "valid rate", "(not reported)",
        "$$ a = b. \\quad C $$ See {cite}`zhang2024forcing` and [the release](https://example.org/a.b).", "Done.",
    ]


def test_code_math_and_citations_are_not_read():
    assert check_prose.flag_sentences("Run `only_once()` on $\\max_{most} x$ as {cite}`far2024`.") == []
    assert check_prose.flag_sentences("The ten most frequent names, at most 15 lines.") == []


def test_approximate_typed_quantities_are_flagged():
    assert [f.words for f in check_prose.flag_sentences("It adds about a minute.")] == [("about a minute",)]
    assert check_prose.flag_sentences("It takes about {glue:text}`minutes` minutes.") == []


def test_the_book_has_no_typed_verdicts():
    """Every notebook but the PENDING ones, book/*.md and README.md, against the allowlist; an entry
    that no longer matches any sentence is an error too."""
    flags, unused = check_prose.check(check_prose.book_paths(), check_prose.load_allowlist())
    assert not flags, "typed verdicts:\n" + "\n".join(map(str, flags))
    assert not unused, f"allowlist entries that match no sentence: {unused}"


def test_pending_names_notebooks_that_exist():
    names = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert set(check_prose.PENDING) <= names
    assert not {p.name for p in check_prose.book_paths()} & set(check_prose.PENDING)


def test_the_cli_exits_non_zero_on_a_flag(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text("The method mostly works.\n")
    assert check_prose.main([str(page)]) == 1
    assert "[mostly] The method mostly works." in capsys.readouterr().out
    page.write_text("The method gives {glue:text}`verdict`.\n")
    assert check_prose.main([str(page)]) == 0


def decimals(text: str) -> int:
    return len(text.partition(".")[2])


def test_readme_sampler_figures_are_the_benchmarks():
    readme = (ROOT / "README.md").read_text()
    sampling = json.loads((ROOT / "benchmarks" / "results.json").read_text())["sampling"]
    found = re.search(r"(\d+\.\d+)x on (\d+) short answers at (\d+)% of the bound, "
                      r"(\d+\.\d+)x on (\d+) biographies at (\d+)%", readme)
    assert found, "README no longer states the sampler's figures in the form this test reads"
    for (speed, n, share), case in zip((found.groups()[:3], found.groups()[3:]), sampling):
        assert float(speed) == round(case["speed_up"], decimals(speed)), case["case"]
        assert int(n) == case["n"], case["case"]
        assert int(share) == round(100 * case["package_tokens_per_s"] / case["matmul_bound_tokens_per_s"])


def record(commit: str, **where) -> dict:
    """The run of ``benchmarks/book_timings.json`` at ``commit`` whose fields match ``where``."""
    runs = json.loads((ROOT / "benchmarks" / "book_timings.json").read_text()).values()
    matching = [run for run in runs if run["commit"] == commit
                and all(bool(run.get(key)) == value for key, value in where.items())]
    assert len(matching) == 1, f"no single recorded run at {commit} with {where}"
    return matching[0]


def test_readme_book_times_are_the_recorded_ones():
    readme = " ".join((ROOT / "README.md").read_text().split())
    runs = re.findall(r"commit (\w+) its chapters took (\d+\.\d) minutes \(in minutes: ([^)]*)\)", readme)
    assert len(runs) == 1, "README no longer states the recorded default book in the form this test reads"
    ((commit, total, chapters),) = runs
    run = record(commit, partial=False, ci_total_seconds=False)
    assert float(total) == round(run["chapters_total_seconds"] / 60, 1)
    seconds = {name[:2]: value for name, value in run["chapter_seconds"].items()}
    assert sorted(item.split()[0] for item in chapters.split(", ")) == sorted(seconds)
    for number, minutes in (item.split() for item in chapters.split(", ")):
        assert float(minutes) == round(seconds[number] / 60, decimals(minutes)), number
    ci = re.search(r"last CI run recorded \(commit (\w+)[^()]*\) took (\d+) s", readme)
    assert ci and int(ci.group(2)) == record(ci.group(1), ci_total_seconds=True)["ci_total_seconds"]
