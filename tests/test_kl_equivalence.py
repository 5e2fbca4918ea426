"""Chapter 2's checks (diffuse_utils.kl_equivalence) against cases computed by hand."""

import pytest
import torch

from diffuse_utils.kl_equivalence import angle_degrees, compare_forms, fit_tree


def test_tree_with_the_end_token_splits_the_mass():
    fitted = fit_tree(True)
    assert fitted["p(target '1')"] == pytest.approx(0.5, abs=1e-3)
    assert fitted["p(target '10')"] == pytest.approx(0.5, abs=1e-3)
    assert fitted["sum"] == pytest.approx(1.0, abs=1e-3)


def test_tree_without_it_puts_nearly_all_on_both():
    # the loss -(log p(1) + log p(1) p(0|1)) / 2 is lowest at p(1) = p(0|1) = 1
    fitted = fit_tree(False)
    assert fitted["p(target '1')"] > 0.99 and fitted["p(target '10')"] > 0.99
    assert fitted["sum"] > 1.98


def test_angle_degrees_by_hand():
    assert angle_degrees(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])) == (
        pytest.approx(45.0)
    )
    assert angle_degrees(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])) == (
        pytest.approx(90.0)
    )
    assert angle_degrees(torch.tensor([3.0, 4.0]), torch.tensor([6.0, 8.0])) == 0.0


def test_compare_forms_by_hand():
    forms = compare_forms(
        torch.tensor(2.0),
        torch.tensor(2.2),
        torch.tensor([3.0, 4.0]),
        torch.tensor([3.0, 4.0]) * 1.1,
    )
    assert forms["gradient norm, sequence"] == pytest.approx(5.0)
    assert forms["gradient norm, per-token"] == pytest.approx(5.5)
    assert forms["relative difference, loss"] == pytest.approx(0.1)
    assert forms["relative difference, gradient norm"] == pytest.approx(0.1)
    assert forms["relative difference, gradient vector"] == pytest.approx(0.1)
