"""diffuse_utils.tables: labels in words, numbers untouched."""
import numpy as np
import pandas as pd

from diffuse_utils import answer_figures
from diffuse_utils.tables import LABELS, label, readable


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
