import pytest

from diffuse_utils import data, entropy


def test_ssa_distribution_latest_year():
    natural = data.ssa_name_distribution()
    assert data.ssa_latest_year() == 2017
    assert natural.sum() == pytest.approx(1.0)
    assert list(natural.index[:2]) == ["Emma", "Liam"]  # the most given names of 2017
    assert "Olivia" in data.ssa_known_names() and "{name}" not in data.ssa_known_names()


def test_babynames_task_is_an_empirical_distribution():
    task = data.babynames_task(200, seed=0)
    assert sum(task.weights) == 200 and len(set(task.targets)) == len(task.targets)
    assert task.weights == sorted(task.weights, reverse=True)
    assert data.babynames_task(200, seed=0) == task and data.babynames_task(200, seed=1) != task
    assert 0 < entropy(task.probabilities) <= entropy([1] * 200)
