"""Figure 2 of the paper (chapter 3): how far an adapter tuned on number ranges
reaches, read exactly on ranges and prompt formats it was not tuned on.

- :func:`range_entropies`: exact entropy and valid mass per prompt of each range task,
  as one long table;
- :func:`random_low_ranges`: ranges of given sizes with a lower bound drawn at random
  between 1 and 900 (Figure 2b).

Example::

    tasks = random_low_ranges([10, 50], per_size=2, seed=0)  # 4 ranges, 1 prompt each
    range_entropies(model, tokenizer, tasks, "base")  # one row per range and prompt
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .scoring import score_prompts
from .tasks import RANGE_PROMPTS, Task, range_task


def range_entropies(model, tokenizer, tasks: dict, label: str) -> pd.DataFrame:
    """Exact ``valid_mass``, ``entropy`` and ``kl`` (``scoring.score_prompts``) of each
    prompt of each task of ``tasks`` (key -> task), one row each: columns ``key``,
    ``prompt``, the figures, ``size`` (the number of targets) and ``model``
    (``label``). Example: ``{5: range_task(1, 5, RANGE_PROMPTS)}`` gives five rows,
    size 5."""
    table = pd.concat(
        {key: score_prompts(model, tokenizer, task) for key, task in tasks.items()},
        names=["key", "prompt"],
    ).reset_index()
    sizes = {key: len(task.targets) for key, task in tasks.items()}
    return table.assign(size=table["key"].map(sizes), model=label)


def random_low_ranges(
    sizes, per_size: int, seed: int = 0, templates=None
) -> dict[str, Task]:
    """For each size of ``sizes``, ``per_size`` ranges ``low .. low + size - 1`` with
    ``low`` drawn uniformly from 1..900 (``numpy.random.default_rng(seed)``, sizes in
    order), keyed by task name (a range drawn twice is kept once). templates: the
    prompts (default: prompt 1 of Appendix B.1). Example: ``random_low_ranges([10], 1,
    seed=0)`` -> ``{"rng-766-775": ...}``."""
    generator = np.random.default_rng(seed)
    templates = RANGE_PROMPTS[:1] if templates is None else templates
    tasks = {}
    for size in sizes:
        for low in generator.integers(1, 901, size=per_size):
            task = range_task(int(low), int(low) + size - 1, templates)
            tasks.setdefault(task.name, task)
    return tasks
