"""diffuse_utils.tables: labels in words, numbers untouched unless shown rounded."""
import numpy as np
import pandas as pd

from diffuse_utils import answer_figures
import pytest

from diffuse_utils.tables import LABELS, MISSING, label, readable, rounded


def test_label_reads_the_figures_and_spaces_the_rest():
    assert label("valid_rate") == "valid rate" and label("entropy_valid") == "entropy (valid)"
    assert label("first_name_coverage") == "first name coverage"
    assert label("kl") == "KL" and label(3) == 3 and label(None) is None
    figures = answer_figures(["a", "A", "zz", None], ["a"], lists=False)
    assert all("_" not in label(name) for name in figures)   # every figure a reader sees, in words


def test_readable_renames_every_level_and_keeps_the_numbers():
    columns = pd.MultiIndex.from_tuples([("RNG", "entropy_valid"), ("RNG", "kl"), ("FRUITS", "valid_rate")],
                                        names=["task", "the_metric"])
    frame = pd.DataFrame([[1.5, 0.25, 0.5]], index=pd.Index(["six_tasks"], name="run_name"), columns=columns)
    shown = readable(frame)
    assert list(shown.columns) == [("RNG", "entropy (valid)"), ("RNG", "KL"), ("FRUITS", "valid rate")]
    assert list(shown.index) == ["six tasks"] and shown.index.name == "run name"
    assert list(shown.columns.names) == ["task", "the metric"]
    np.testing.assert_array_equal(shown.to_numpy(), frame.to_numpy())
    assert list(frame.columns) == list(columns)   # the caller's frame is not changed


def test_readable_drops_only_empty_columns_when_asked():
    frame = pd.DataFrame({"valid_rate": [0.5, 1.0], "outside_share": [np.nan, np.nan]})
    assert list(readable(frame)) == ["valid rate", LABELS["outside_share"]]
    assert list(readable(frame, drop_empty=True)) == ["valid rate"]


def test_rounded_gives_decimals_whole_counts_and_a_dash_for_missing():
    frame = pd.DataFrame({"rate": [0.5, 0.123456, np.nan], "count": [3.0, np.nan, 12.0],
                          "updates": [30, 10, 0], "name": ["Emma", None, "Liam"],
                          "stopped": [True, False, True]})
    shown = rounded(frame, 2)
    assert list(shown["rate"]) == ["0.50", "0.12", MISSING]
    assert list(shown["count"]) == ["3", MISSING, "12"]       # floats only because of the NaN
    assert list(shown["updates"]) == ["30", "10", "0"]
    assert list(shown["name"]) == ["Emma", MISSING, "Liam"]
    assert list(shown["stopped"]) == [True, False, True]      # not a number column
    assert frame["rate"].isna().sum() == 1                    # the caller's frame is not changed
    assert list(rounded(pd.DataFrame({"x": [-1.0, 2.5]}), 0)["x"]) == ["-1", "2"]  # round half even
    shares = rounded(pd.DataFrame({"share": [0.0, 1.0], "points": [-2.0, 0.0]}), 3)
    assert list(shares["share"]) == ["0.000", "1.000"]   # a share, not a count
    assert list(shares["points"]) == ["-2", "0"]


def test_rounded_keeps_repeated_labels_apart_and_readable_rounds_when_asked():
    frame = pd.DataFrame([[0.25, 3.0]], columns=["valid_rate", "valid_rate"])
    assert rounded(frame, 1).iloc[0].tolist() == ["0.2", "3"]   # each column on its own
    shown = readable(pd.DataFrame({"valid_rate": [0.5, np.nan]}), digits=3)
    assert list(shown["valid rate"]) == ["0.500", MISSING]
    with pytest.raises(ValueError, match="digits is -1"):
        rounded(frame, -1)
