"""Chapter 1: a model's bias, measured exactly (every valid answer scored) and by
sampling.

- :class:`Draws`: cached generations of one model under one :class:`SampleSettings`,
  with their wall time;
- :func:`exact_row`: the exact distribution over a task's targets, and its summary;
- :func:`agreement_band`, :func:`band_summary`: the sampled count of each answer
  against the band that as many draws from the exact distribution give;
- :func:`temperature_sweep`, :func:`crossing_text`: footnote 6, exact entropy and
  sampled validity against the temperature;
- :func:`table1_baselines`: our rows of Table 1's baseline columns beside the paper's;
- :func:`base_finding`: footnote 2's sentence on a base model;
- :func:`show_samples`: fresh samples of a task, drawn as bars (the chapter's
  explorer).

Example::

    draws = Draws("artifacts", model, tokenizer, SampleSettings(seed=0))
    texts, seconds = draws(RNG_PROMPT, 100, response_prefix="{")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from . import plots
from .answers import answer_figures, text_figures
from .artifacts import cached_generations
from .decoding import SampleSettings
from .metrics import empirical_distribution, entropy, kl_divergence, multinomial_band
from .report import paper_table1
from .sampling import sample
from .scoring import conditional_distribution, target_logprobs, valid_mass

ENTROPY = "exact entropy over valid"  # the sweep's column that crossing_text reads


class Drawn(NamedTuple):
    """The texts of one cached draw and the seconds they took (prorated when read
    from a larger draw)."""

    texts: list[str]
    seconds: float


@dataclass(frozen=True, eq=False)
class Draws:
    """Cached generations of ``model`` under ``settings``: calling it with a prompt,
    a count and settings to replace (``response_prefix="{"``, ``temperature=5``)
    returns a :class:`Drawn`. The cache is ``artifacts.cached_generations``'s, the
    one every chapter reads (its key: the model, the prompt and the settings);
    ``label`` names the files only, ``batch_size`` changes the speed only.

    Example::

        draws = Draws("artifacts", model, tokenizer, SampleSettings(seed=0))
        draws(RNG_PROMPT, 100, response_prefix="{").texts[:2]  # ['{7}', '{7}']
    """

    output_dir: str
    model: object
    tokenizer: object
    settings: SampleSettings
    batch_size: int = 100
    label: str = "base"

    def __call__(self, prompt: str, n: int, **overrides) -> Drawn:
        (texts,), (seconds,) = cached_generations(
            self.output_dir,
            self.model,
            self.tokenizer,
            [prompt],
            n,
            self.settings,
            label=self.label,
            batch_size=self.batch_size,
            **overrides,
        )
        return Drawn(texts, seconds)


def exact_row(model, tokenizer, task) -> tuple[pd.Series, dict]:
    """The exact distribution over ``task``'s targets on one model (renormalized over
    the targets), and its summary: valid mass, entropy, entropy over ``ln |T|``, the KL
    of the model from ``task``'s weights, the top answer and its probability.
    Example: ``dist, row = exact_row(model, tokenizer, range_task(1, 10))``;
    ``row["top answer"]`` -> ``'7'``."""
    logprobs = target_logprobs(model, tokenizer, task)
    dist = conditional_distribution(logprobs)
    return dist, {
        "valid mass": valid_mass(logprobs),
        "entropy (nats)": entropy(dist),
        "entropy / ln |T|": entropy(dist) / np.log(len(task.targets)),
        "KL(uniform || model)": kl_divergence(task.probabilities, dist.to_numpy()),
        "top answer": dist.idxmax().strip(),
        "top p": dist.max(),
    }


def agreement_band(
    probabilities: pd.Series, answers: list, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Each answer's count among ``answers`` (``None``: no valid answer) against the
    central ``level`` band of its count in as many draws from ``probabilities`` (the
    exact distribution; what it leaves is "other"), and the number of valid answers
    against its own band (the last row, ``"any valid"``). Columns: expected, low,
    high (``metrics.multinomial_band``), observed, inside.

    Example: ``agreement_band(pd.Series({"a": 0.5, "b": 0.5}), ["a", "b", "a", None])``
    -> observed 2, 1 and 3 (any valid), expected 2, 2 and 4.
    """
    counts = pd.Series(answers).value_counts()  # None is not counted
    total = pd.Series({"any valid": probabilities.sum()})
    band = multinomial_band(
        pd.concat([probabilities, total]), n=len(answers), level=level, seed=seed
    )
    band["observed"] = counts.reindex(band.index, fill_value=0)
    band.loc["any valid", "observed"] = counts.sum()
    band["inside"] = band["observed"].between(band["low"], band["high"])
    return band


def band_summary(band: pd.DataFrame) -> dict:
    """How many answers of an :func:`agreement_band` fall inside their band, and
    whether the valid total does. Example: ``{"answers inside the 95% band": "9 / 10",
    "valid total inside its band": True}``."""
    inside = band["inside"].iloc[:-1]
    return {
        "answers inside the 95% band": f"{inside.sum()} / {len(inside)}",
        "valid total inside its band": bool(band.loc["any valid", "inside"]),
    }


def temperature_sweep(draws: Draws, task, temperatures, n: int) -> pd.DataFrame:
    """Footnote 6: at each temperature, the exact entropy over ``task``'s targets and
    their valid mass (every token's logits divided by the temperature), and the valid
    rate of ``n`` samples of its first prompt: as exact responses
    (``Task.answer_of``) and as braces anywhere in the text (the paper's reading).
    Example: ``temperature_sweep(draws, range_task(1, 10), [1, 5], n=30)``: two rows.
    """
    rows = []
    for temperature in temperatures:
        logprobs = target_logprobs(
            draws.model, draws.tokenizer, task, temperature=temperature
        )
        prompt = task.prompts[0]
        texts = draws(prompt, n, temperature=temperature).texts
        exact = [task.answer_of(t) for t in texts]
        rows.append(
            {
                "temperature": temperature,
                ENTROPY: entropy(conditional_distribution(logprobs)),
                "exact valid mass": valid_mass(logprobs),
                "sampled: exact response": answer_figures(exact)["valid_rate"],
                "sampled: braces anywhere": text_figures(
                    texts, task.targets, prompt=prompt
                )["valid_rate"],
            }
        )
    return pd.DataFrame(rows)


def crossing_text(
    sweep: pd.DataFrame, shortest: int, n_targets: int, share: float = 0.99
) -> str:
    """Where the sweep's exact entropy first reaches ``share`` of ``ln n_targets``, in
    words; where it never does, whether its high-temperature limit, ``ln shortest``
    (``shortest``: the targets with the fewest tokens), is below that too.
    Example: a sweep reaching 2.29 nats at temperature 5 of 10 targets ->
    ``'at temperature 5'``."""
    threshold = share * np.log(n_targets)
    crossing = sweep[sweep[ENTROPY] >= threshold]["temperature"]
    if len(crossing):
        return f"at temperature {crossing.iloc[0]:g}"
    tried = f"at no temperature tried (up to {sweep['temperature'].iloc[-1]:g})"
    return tried + (", and never in the limit" if np.log(shortest) < threshold else "")


def table1_baselines(tables: dict, naturals: dict, model: str) -> pd.DataFrame:
    """Table 1's baseline columns: our rows beside the paper's (quoted), by task.

    tables: task -> a table of ``answer_figures`` rows, one per setting (its index, e.g.
    the response prefix; rows whose label starts with "natural" are left out);
    naturals: task -> (label, figures) of the natural distribution; model: our model's
    name. Example: ``table1_baselines({"RNG": rng_table}, {"RNG": ("uniform",
    {"entropy_valid": 2.30, "coverage_valid": 10})}, "SmolLM2-135M")``.
    """
    ours = []
    for task, table in tables.items():
        ours += [
            {
                "task": task,
                "model": f"{model}, prefix {label}",
                "entropy_baseline": row["entropy_valid"],
                "coverage_baseline": row["coverage_valid"],
                "valid_rate": row["valid_rate"],
                "source": "this notebook",
            }
            for label, row in table.iterrows()
            if not label.startswith("natural")
        ]
    for task, (label, row) in naturals.items():
        ours.append(
            {
                "task": task,
                "model": label,
                "entropy_baseline": row["entropy_valid"],
                "coverage_baseline": row["coverage_valid"],
                "source": "this notebook",
            }
        )
    columns = ["task", "model", "entropy_baseline", "coverage_baseline", "source"]
    table = pd.concat([pd.DataFrame(ours), paper_table1()[columns]])
    return table.sort_values("task", kind="stable").reset_index(drop=True)


def base_finding(
    name: str, base: dict, chat: dict, sampled: dict, n_targets: int
) -> str:
    """Footnote 2's sentence: the base model's exact figures (``base``, an
    :func:`exact_row` summary), whether it is closer to uniform than the chat model on
    the RNG prompt (``chat``), and its sampled valid rate and coverage (``sampled``,
    ``answer_figures`` of its completions).
    Example: ``'gemma-3-270m puts 30% of its valid mass on 1 (uniform: 5%); ...'``."""
    share = base["entropy / ln |T|"]
    than = "closer to" if share > chat["entropy / ln |T|"] else "further from"
    return (
        f"{name} puts {100 * base['top p']:.0f}% of its valid mass on "
        f"{base['top answer']} (uniform: {100 / n_targets:.0f}%); its entropy "
        f"is {base['entropy (nats)']:.2f} nats, "
        f"{100 * share:.0f}% of ln {n_targets}, a KL of "
        f"{base['KL(uniform || model)']:.3f} nats from uniform, {than} uniform than "
        f"the chat model on the RNG prompt. Sampled, "
        f"{100 * sampled['valid_rate']:.0f}% of {sampled['n']} completions are "
        f"a valid answer, with {sampled['coverage_valid']} of the {n_targets} seen"
    )


def show_samples(
    model,
    tokenizer,
    tasks: dict,
    settings: SampleSettings,
    n: int = 100,
    batch_size: int = 100,
    task: str = "RNG",
    temperature: float = 1.0,
    prefix: str = "{",
):
    """``n`` fresh samples of ``tasks[task]`` (a ``(prompt, valid answers)`` pair) at
    ``temperature`` with the response ``prefix``, drawn as bars of the valid answers
    (the 15 most frequent); returns the figure.
    Example: ``show_samples(model, tok, {"RNG": (RNG_PROMPT, targets)}, settings, 20)``.
    """
    prompt, valid = tasks[task]
    texts = sample(
        model,
        tokenizer,
        prompt,
        n,
        settings,
        batch_size=batch_size,
        progress=False,
        temperature=temperature,
        response_prefix=prefix,
    )
    answers = text_figures(texts, valid, prompt=prompt)["answers"]
    title = f"{task} at T={temperature}: {len(answers)}/{n} valid"
    return plots.distribution_bars(
        {"sampled": empirical_distribution(answers)}, top=15, title=title
    )
