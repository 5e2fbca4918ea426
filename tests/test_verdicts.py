"""Chapter 7's verdicts read as sentences in every outcome, with the right numbers."""

import numpy as np
import pandas as pd
import pytest

from diffuse_utils import verdicts


def _runs(rows):
    """A names_runs table from (lr, rank, gamma, updates, stopped, outside, valid)."""
    columns = ["lr", "rank", "gamma", "updates", "stopped", "outside (generations)"]
    return pd.DataFrame(rows, columns=[*columns, "valid_rate"])


CI = _runs(
    [  # chapter 7 under CI parameters: no run reaches either threshold
        (5e-4, 4, 0.2, 3, False, 1.0, 0.15),
        (5e-4, 4, 0.5, 3, False, 1.0, 0.15),
        (5e-5, 4, 0.2, 3, False, np.nan, 0.0),
        (5e-5, 4, 0.5, 3, False, np.nan, 0.0),
    ]
)


def test_outside_verdict_when_no_run_reaches_the_stop():
    assert verdicts.outside_verdict(CI, 0.2) == (
        "No run of the 2 reaches the early stop at γ = 0.2; short of it, a majority of "
        "valid names falls outside the targets for lr 0.0005, rank 4, after 3 updates "
        "(1.00 outside, valid 0.15)."
    )
    narrow = CI.assign(**{"outside (generations)": 0.2})
    assert verdicts.outside_verdict(narrow, 0.2) == (
        "No run of the 2 reaches the early stop at γ = 0.2; short of it, no checkpoint "
        "has a majority outside the targets."
    )


def test_outside_verdict_when_runs_reach_the_stop():
    table = _runs(
        [
            (5e-4, 4, 0.2, 40, True, 0.3, 0.9),
            (5e-4, 4, 0.5, 12, True, 0.6, 0.8),
            (5e-4, 16, 0.2, 30, True, 0.55, 0.9),
            (5e-4, 16, 0.5, 9, True, 0.7, 0.8),
            (5e-5, 4, 0.2, 50, False, 0.1, 0.5),
            (5e-5, 4, 0.5, 50, False, 0.1, 0.5),
        ]
    )
    assert verdicts.outside_verdict(table, 0.2) == (
        "2 of the 3 runs (lr 0.0005, rank 4; lr 0.0005, rank 16) reach the early stop "
        "at γ = 0.2, where a majority of valid names falls outside the targets for "
        "lr 0.0005, rank 16 (0.55 outside, valid 0.90); short of it, a majority of "
        "valid names falls outside the targets for lr 0.0005, rank 4, at gamma 0.5 "
        "(0.60 outside, valid 0.80); lr 0.0005, rank 16, at gamma 0.5 (0.70 outside, "
        "valid 0.80)."
    )
    every = table[table["lr"] == 5e-4].assign(**{"outside (generations)": 0.4})
    assert verdicts.outside_verdict(every, 0.2) == (
        "All 2 runs reach the early stop at γ = 0.2, where no run has a majority of "
        "its valid names outside the targets; short of it, no checkpoint has a "
        "majority outside the targets."
    )
    one = every[every["rank"] == 4]
    assert verdicts.outside_verdict(one, 0.2).startswith("The one run reaches")


def test_majority_runs_lists_each_checkpoint_once():
    assert verdicts.majority_runs(CI) == (
        "lr 0.0005, rank 4, after 3 updates, short of the early stop "
        "(1.00 outside, valid 0.15)"
    )
    assert (
        verdicts.majority_runs(CI.assign(**{"outside (generations)": 0.1})) == "no run"
    )


def _curve(ratios, memorization):
    return pd.DataFrame({"L / H(p*)": ratios, "memorization": memorization})


def test_memorization_verdict_compares_runs_at_one_loss():
    alike = {
        "fast": _curve([3, 2, 1], [0.3, 0.2, 0.1]),
        "slow": _curve([3, 2.5, 2], [0.3, 0.25, 0.2]),
    }
    assert verdicts.memorization_verdict(alike) == (
        "At L / H(p*) = 2.00, a loss every run reaches, the runs' memorization ratios "
        "lie within 0.000 of each other, against 0.100 at their ends: how far a run "
        "goes, more than its learning rate or rank, sets how much it memorizes."
    )
    apart = {
        "fast": _curve([3, 2, 1], [0.3, 0.1, 0.05]),
        "slow": _curve([3, 2.5, 2], [0.3, 0.25, 0.2]),
    }
    assert verdicts.memorization_verdict(apart).endswith(
        "the learning rate and rank change how the model lowers the loss, not only how "
        "far it gets."
    )
    same = {"a": _curve([3, 2], [0.3, 0.2]), "b": _curve([3, 2], [0.3, 0.2])}
    assert verdicts.memorization_verdict(same).endswith("wherever they stop.")
    assert verdicts.memorization_verdict({"a": _curve([3], [0.3])}).startswith(
        "With one"
    )


def _gains(values):
    return pd.DataFrame(
        {"OOD entropy gain": values},
        index=["pass, lr 0.0005", "prompt, lr 0.0005"][: len(values)],
    )


def test_transfer_verdict_in_every_outcome():
    assert verdicts.transfer_verdict(_gains([0.1, 0.3]), "prompt, lr 0.0005") == (
        "The left-out family's exact entropy gains the most under prompt, lr 0.0005 "
        "(+0.30 nats); that is the book's default."
    )
    assert verdicts.transfer_verdict(_gains([0.3, 0.1]), "prompt, lr 0.0005").endswith(
        "; the book's default, prompt, lr 0.0005, changes it by +0.10."
    )
    assert verdicts.transfer_verdict(
        _gains([-0.0015, -0.0109]), "prompt, lr 0.0005"
    ) == (
        "No run raises the left-out family's exact entropy: the changes run from -0.01 "
        "to -0.002 nats; the book's default, prompt, lr 0.0005, changes it by -0.01."
    )
    assert verdicts.transfer_verdict(_gains([-0.27, -0.15]), "prompt, lr 0.0005") == (
        "No run raises the left-out family's exact entropy: the changes run from -0.27 "
        "to -0.15 nats; the book's default, prompt, lr 0.0005, loses the least."
    )
    assert verdicts.transfer_verdict(_gains([0.2]), "other").startswith("The one run")
    assert "is not among these runs" in verdicts.transfer_verdict(
        _gains([0.2]), "other"
    )


def test_format_and_dose_verdicts():
    assert verdicts.format_verdict(0.43, 0.62, 0.21) == (
        "Yes: after {Name} the six-task adapter ends its turn with probability 0.62 "
        "against the base model's 0.43, and the adapter tuned without the end of turn "
        "with 0.21."
    )
    assert verdicts.format_verdict(0.5, 0.4, 0.1).startswith("No: after {Name}")
    assert verdicts.format_verdict(0.4, 0.5, 0.6).startswith("Not its targets'")
    rising = pd.Series([0.555, 0.624], index=[0.5, 1.0])
    assert verdicts.dose_verdict(rising) == (
        "Scaling its LoRA update up raises p(end of turn) at every step, from 0.56 at "
        "x0.5 to 0.62 at x1."
    )
    assert "lowers" in verdicts.dose_verdict(rising[::-1].set_axis([0.5, 1.0]))
    mixed = pd.Series([0.5, 0.7, 0.6], index=[0.25, 0.5, 1.0])
    assert "not one way" in verdicts.dose_verdict(mixed)
    assert (
        verdicts.dose_verdict(rising.iloc[:1]) == "At x0.5 its p(end of turn) is 0.56."
    )


def test_coverage_verdict_is_a_clause_in_both_outcomes():
    assert verdicts.coverage_verdict({"six tasks": 4, "no end": 4}, 4).startswith(
        "the short-answer tasks' diversity does not carry"
    )
    assert verdicts.coverage_verdict({"six tasks": 9, "no end": 4}, 4) == (
        "first-name coverage rises above the base model's for: six tasks"
    )


def test_utility_verdict_weighs_each_fall_against_its_standard_error():
    def points(knowledge, qa):
        return pd.DataFrame(
            {
                "knowledge change": [knowledge, 0.0],
                "knowledge se": 3.0,
                "qa_named change": [qa, 0.0],
                "qa_named se": 4.0,
            }
        )

    assert verdicts.utility_verdict(points(0.0, 0.0)) == (
        "The exact knowledge probe falls by at most 0 points (standard error 3) and "
        "greedy capital QA by at most 0 (standard error 4): neither falls by more than "
        "twice its standard error."
    )
    assert verdicts.utility_verdict(points(-2.0, -20.0)).endswith(
        "the greedy answers change form, the knowledge does not."
    )
    assert "knowledge is lost" in verdicts.utility_verdict(points(-9.0, -20.0))
    assert "knowledge probe falls beyond" in verdicts.utility_verdict(points(-9.0, 0))


def test_picks_read_as_sentences_whatever_the_rule_finds():
    assert verdicts.pick_sentence("BABYNAMES", None, "lr 0.0005, rank 4") == (
        "For BABYNAMES no run qualifies, so the rule leaves the book's default "
        "(lr 0.0005, rank 4) unconfirmed."
    )
    assert verdicts.pick_sentence("the six tasks", "a", "a") == (
        "For the six tasks the rule picks a, the book's default."
    )
    assert verdicts.pick_sentence("the six tasks", "a", "b") == (
        "For the six tasks the rule picks a, not the book's default (b)."
    )
    gains = _gains([-0.0015, -0.0109])
    assert verdicts.pick_consequence(gains, None, "prompt, lr 0.0005") == ""
    assert verdicts.pick_consequence(gains, "pass, lr 0.0005", "prompt, lr 0.0005") == (
        "Chapters 4-6 in this build still use their own schedule, whose left-out "
        "family's exact entropy changes by -0.01 nats, against -0.002 for the pick: "
        "their transfer figures are for that schedule, and re-running them with the "
        "pick is the next step."
    )
    assert "family's exact entropy was not measured here:" in verdicts.pick_consequence(
        gains, "pass, lr 0.0005", "prompt, lr 0.001"
    )
    row = pd.Series({"lr": 5e-4, "rank": 4})
    assert verdicts.rank_note(None, None).endswith("no run would qualify either.")
    assert verdicts.rank_note(row, row).endswith("it would pick the same run.")
    assert verdicts.rank_note(None, row).endswith("it would pick lr 0.0005, rank 4.")
    one_rank = verdicts.rank_note(row, row, [4, 4])
    assert one_rank == ("Every run here has rank 4, so the rank condition decides nothing; the full "
                        "profile crosses ranks.")


@pytest.mark.parametrize("gamma", [0.2, 0.5])
def test_sentences_start_with_a_capital_and_end_with_a_full_stop(gamma):
    for text in (
        verdicts.outside_verdict(CI, gamma),
        verdicts.transfer_verdict(_gains([0.1, 0.3]), "x"),
        verdicts.dose_verdict(pd.Series([0.2, 0.1], index=[0.5, 1.0])),
    ):
        assert text[0].isupper() and text.endswith(".") and ".." not in text


def test_a_change_in_nats_reads_as_a_change():
    shown = [verdicts._change(v) for v in (0.45, -0.0015, -0.00012, 0.0, float("nan"))]
    assert shown == ["+0.45", "-0.002", "-0.00012", "+0.00", "unmeasured"]
