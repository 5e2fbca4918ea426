"""Alternatives to tuning: decoding knobs, Verbalized Sampling and String Seed of
Thought, measured like the tuned model.

Decoding settings (temperature, top-p, min-p) change how the *same* model is sampled;
they can be scored exactly too (``target_logprobs(..., temperature, top_p, min_p)``).
Verbalized Sampling (Zhang et al., 2025) is a prompting method: ask the model to *list*
``k`` candidate answers with probabilities, then draw one answer from its own list. A
list that cannot be parsed is a failure and counts as an invalid answer. String Seed of
Thought (Misaki and Akiba, 2026; prompt and parser in :mod:`string_seed`) asks for a
random string first and an answer derived from it; ``Method.seeded(8)`` runs it.

Example::

    prompt = verbalized_prompt(RNG_PROMPT, k=5)
    text = "{3}: 0.2\\n{7}: 0.5\\n{9}: 0.3"
    parse_verbalized(text)  # {'3': 0.2, '7': 0.5, '9': 0.3}
    draw_from_lists([text], seed=0)  # ['7'] (one draw per list)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd

from .answers import answer_figures, canonicalizer, text_figures
from .artifacts import cached_generations
from .decoding import SampleSettings
from .metrics import kl_divergence, kl_from_samples
from .scoring import score_prompts
from .string_seed import SEEDED_ANSWER_TOKENS, seed_prompt, seeded_figures
from .tasks import Task
from .tries import TOKENS_PER_PASS

# Verbalized Sampling's pieces are re-exported: baselines.parse_verbalized, ...
from .verbalized import (  # noqa: F401
    VERBALIZED_ANSWER_TOKENS,
    draw_from_lists,
    parse_verbalized,
    verbalized_distribution,
    verbalized_prompt,
)

# Decoding settings compared in chapter 6 (name -> SampleSettings fields).
DECODING_METHODS = {
    "temperature 1": {"temperature": 1.0},
    "temperature 1.5": {"temperature": 1.5},
    "temperature 2": {"temperature": 2.0},
    "top-p 0.9, temperature 1.5": {"temperature": 1.5, "top_p": 0.9},
    "min-p 0.1, temperature 2": {"temperature": 2.0, "min_p": 0.1},
}


def decoding_settings(method: str) -> dict:
    """The sampler settings of a named method in :data:`DECODING_METHODS`."""
    if method not in DECODING_METHODS:
        raise KeyError(
            f"unknown decoding method {method!r}; known: {list(DECODING_METHODS)} "
            "(add your own to baselines.DECODING_METHODS)"
        )
    return DECODING_METHODS[method]


@dataclass(frozen=True)
class Method:
    """One way of asking for diverse answers, as :func:`compare_probes` runs it.

    name: its label in tables; settings: how its texts are sampled
    (:class:`SampleSettings`);
    verbalized_k: Verbalized Sampling, with this many candidates listed; seed_length:
    String Seed of Thought, with a random string of this many characters (at most one of
    the two).
    Example: ``Method.decoding("min-p 0.1, temperature 2", SampleSettings(seed=1))``.
    """

    name: str
    settings: SampleSettings = field(default_factory=SampleSettings)
    verbalized_k: int | None = None
    seed_length: int | None = None

    def __post_init__(self):
        if self.verbalized_k is not None and self.seed_length is not None:
            raise ValueError(
                "verbalized_k and seed_length are two different methods: set at most "
                "one of them"
            )

    @property
    def kind(self) -> str:
        """``'verbalized'``, ``'seeded'`` or ``'decoding'``."""
        if self.verbalized_k is not None:
            return "verbalized"
        return "decoding" if self.seed_length is None else "seeded"

    @classmethod
    def decoding(cls, name: str, settings: SampleSettings | None = None) -> "Method":
        """The named decoding setting of :data:`DECODING_METHODS` on top of
        ``settings``."""
        return cls(
            name, replace(settings or SampleSettings(), **decoding_settings(name))
        )

    @classmethod
    def verbalized(
        cls, k: int, seed: int = 0, max_new_tokens: int = VERBALIZED_ANSWER_TOKENS
    ) -> "Method":
        """Verbalized Sampling with ``k`` candidates, its lists sampled at temperature
        1."""
        return cls(
            "Verbalized Sampling",
            SampleSettings(max_new_tokens=max_new_tokens, seed=seed),
            verbalized_k=k,
        )

    @classmethod
    def seeded(
        cls, length: int, seed: int = 0, max_new_tokens: int = SEEDED_ANSWER_TOKENS
    ) -> "Method":
        """String Seed of Thought with a random string of ``length`` characters, at
        temperature 1."""
        return cls(
            "String Seed of Thought",
            SampleSettings(max_new_tokens=max_new_tokens, seed=seed),
            seed_length=length,
        )

    def prompt(self, probe: "Probe") -> str:
        """What the model is asked for ``probe``."""
        if self.kind == "verbalized":
            return verbalized_prompt(probe.prompt, self.verbalized_k)
        if self.kind == "seeded":
            return seed_prompt(probe.prompt, _options(probe), self.seed_length)
        return probe.prompt


@dataclass
class Probe:
    """One prompt on which methods are compared.

    task: the group it is reported under (``'RNG'``, ``'COUNTRIES'``); name: its own
    name;
    canonical: answer -> valid form or ``None``; targets: the tuning targets (uniform
    ``p*`` for KL); enumerable: whether ``targets`` are all the valid answers, so KL is
    defined.
    """

    task: str
    name: str
    prompt: str
    canonical: Callable
    targets: list[str]
    enumerable: bool

    def as_task(self) -> Task:
        return Task(name=self.name, prompts=[self.prompt], targets=self.targets)


def build_probes(rng: Task, names: Task, suite: list) -> list[Probe]:
    """RNG and BABYNAMES on their own prompts (the ones chapter 3 tuned on) and, for
    every sub-task of the suite, its first held-out prompt (never tuned on, even in
    chapter 4's ID run)."""
    from .suite import load_family

    babynames = load_family("babynames")
    probes = [
        Probe(
            "RNG",
            rng.name,
            rng.prompts[0],
            canonicalizer(rng.targets),
            rng.targets,
            True,
        ),
        Probe(
            "BABYNAMES",
            names.name,
            names.prompts[0],
            babynames.checker("babynames"),
            names.targets,
            False,
        ),
    ]
    for family in suite:
        for sub in family.subtasks:
            probes.append(
                Probe(
                    family.title,
                    sub.name,
                    sub.metadata["held_out_prompts"][0],
                    family.checker(sub.name),
                    sub.targets,
                    bool(sub.metadata.get("enumerable")),
                )
            )
    return probes


def compare_probes(
    output_dir,
    model,
    tokenizer,
    probes: list[Probe],
    method: Method,
    counts: list[int],
    *,
    batch_size: int = 100,
    tokens_per_pass: int = TOKENS_PER_PASS,
) -> list[dict]:
    """Diversity, validity (``answers.answer_figures``) and (where enumerable)
    KL(uniform || model) of one :class:`Method` on each probe.

    Decoding methods and the tuned model: ``counts[k]`` generations of probe ``k`` under
    ``method.settings`` (cached, ``artifacts.cached_generations``: probes not cached are
    sampled together), and the exact distribution over the targets under the same
    decoding (``tokens_per_pass``: its memory). Verbalized Sampling: generated lists,
    one answer drawn from each; ``list_failure`` is the share of lists that did not
    parse, and KL uses the lists' average distribution. String Seed of Thought
    (:mod:`string_seed`): a random string, then the answer; the rule lists the targets
    of enumerable probes. ``seed_failure``, ``seed_consistency`` as in
    ``string_seed.seeded_figures``; KL is that of the sampled valid answers (infinite
    while a target was never drawn: the answer cannot be scored exactly).
    """
    prompts = [method.prompt(probe) for probe in probes]
    drawn, _ = cached_generations(
        output_dir,
        model,
        tokenizer,
        prompts,
        counts,
        method.settings,
        label=method.name,
        batch_size=batch_size,
        progress=False,
    )
    scoring = dict(method.settings.warp, tokens_per_pass=tokens_per_pass)
    return [
        _method_row(model, tokenizer, probe, method, texts, scoring)
        for probe, texts in zip(probes, drawn)
    ]


def _options(probe: Probe) -> list[str] | None:
    """The options String Seed of Thought's rule lists: the targets where they are all
    the valid answers."""
    return probe.targets if probe.enumerable else None


def _method_row(
    model, tokenizer, probe: Probe, method: Method, texts: list[str], scoring: dict
) -> dict:
    """The figures of one probe's generations under one method (see
    :func:`compare_probes`);
    scoring: the decoding and ``tokens_per_pass`` of exact scoring."""
    kind, seed = method.kind, method.settings.seed
    row = {
        "method": method.name,
        "task": probe.task,
        "probe": probe.name,
        "list_failure": np.nan,
    }
    if kind == "seeded":
        seeded = seeded_figures(texts, probe.canonical, _options(probe))
        row.update(
            answer_figures(
                seeded.pop("answers"), probe.canonical, probe.targets, probe.prompt
            ),
            **seeded,
        )
        if probe.enumerable:
            p_star = pd.Series(1 / len(probe.targets), index=probe.targets)
            row.update(
                kl=kl_from_samples(p_star, row["answers"])
                if row["answers"]
                else np.inf,
                valid_mass=row["valid_rate"],
            )
        return row
    if kind == "decoding":
        row.update(text_figures(texts, probe.canonical, probe.targets, probe.prompt))
        if probe.enumerable:
            exact = score_prompts(model, tokenizer, probe.as_task(), **scoring).loc[0]
            row.update(kl=exact["kl"], valid_mass=exact["valid_mass"])
        return row
    row.update(
        answer_figures(
            draw_from_lists(texts, seed), probe.canonical, probe.targets, probe.prompt
        ),
        list_failure=float(np.mean([parse_verbalized(t) is None for t in texts])),
    )
    if probe.enumerable:
        mass = verbalized_distribution(texts, probe.canonical)
        p = np.array([mass.get(t, 0.0) for t in probe.targets])
        row.update(
            kl=kl_divergence(np.full(len(p), 1 / len(p)), p / p.sum())
            if p.sum() > 0
            else np.inf,
            valid_mass=float(p.sum()),
        )
    return row
