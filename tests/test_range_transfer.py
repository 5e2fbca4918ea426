"""Figure 2's tools (range_transfer): ranges with a random lower bound, drawn as numpy
draws them, and the exact entropy table of range tasks on a tiny model."""

import numpy as np
from conftest import make_tiny_model

from diffuse_utils import range_transfer
from diffuse_utils.scoring import score_prompts
from diffuse_utils.tasks import RANGE_PROMPTS, range_task


def test_random_low_ranges_draw_each_size_in_order():
    tasks = range_transfer.random_low_ranges([10, 20], 2, seed=0)
    lows = np.random.default_rng(0).integers(1, 901, size=4)  # 2 per size, in order
    expected = [(lows[0], 10), (lows[1], 10), (lows[2], 20), (lows[3], 20)]
    assert list(tasks) == [f"rng-{low}-{low + size - 1}" for low, size in expected]
    first = tasks[f"rng-{lows[0]}-{lows[0] + 9}"]
    assert first.targets == [str(k) for k in range(lows[0], lows[0] + 10)]
    assert first.prompts == range_task(lows[0], lows[0] + 9, RANGE_PROMPTS[:1]).prompts


def test_random_low_ranges_keep_a_range_drawn_twice_once():
    tasks = range_transfer.random_low_ranges([5], 1000, seed=0)
    lows = np.random.default_rng(0).integers(1, 901, size=1000)
    assert len(tasks) == len(set(lows)) < 1000  # a low drawn twice: one range
    assert list(tasks)[:2] == [f"rng-{low}-{low + 4}" for low in lows[:2]]
    assert all(len(task.targets) == 5 for task in tasks.values())


def test_range_entropies_is_score_prompts_per_task(tokenizer):
    model = make_tiny_model(len(tokenizer))
    tasks = {3: range_task(1, 3, RANGE_PROMPTS[:2]), 5: range_task(1, 5)}
    table = range_transfer.range_entropies(model, tokenizer, tasks, "base")
    assert table["key"].tolist() == [3, 3, 5] and table["prompt"].tolist() == [0, 1, 0]
    assert table["size"].tolist() == [3, 3, 5] and set(table["model"]) == {"base"}
    alone = score_prompts(model, tokenizer, tasks[3])
    assert np.allclose(table["entropy"][:2], alone["entropy"])
    assert np.allclose(table["valid_mass"][:2], alone["valid_mass"])
