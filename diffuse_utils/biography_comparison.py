"""Chapter 5's comparison of models by the biographies they write: each model's
biographies drawn and parsed, then read side by side, a column or a row per model.

- :class:`BiographyWriter`: ``n`` biographies of the paper's prompt, cached, parsed;
- :func:`loss_figure`: the Tuned-ID runs' loss against its minimum ``ln n``;
- :func:`format_table`: how many biographies parse, and why the others do not;
- :func:`top_five`: the paper's Table 2, the five commonest values per attribute;
- :func:`diversity_at_equal_size`: Figure 4b's unigram diversity, each model measured
  on the same number of well-formed biographies;
- :func:`example_rows`: a few biographies of each model, drawn at random (Appendix B.3);
- :func:`birth_place_match`: how many birth places the geocoder located (Figure 5).

Example::

    writer = BiographyWriter("artifacts", tokenizer, 100, SampleSettings(seed=0))
    bios = {"baseline": writer.write(model, "baseline")}
    format_table(bios).round(3)  # a row per model
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .artifacts import cached_generations
from .biographies import (
    ATTRIBUTES,
    BIOGRAPHY_PROMPT,
    FIELDS,
    biography_text,
    parse_biographies,
    top_values,
    unigram_diversity_at,
)
from .decoding import SampleSettings
from .plots import panels, whole_ticks
from .tables import MISSING


@dataclass(frozen=True)
class BiographyWriter:
    """``n`` biographies of :data:`~diffuse_utils.biographies.BIOGRAPHY_PROMPT` under
    ``settings``, saved under ``output_dir`` and reused (the key includes the adapter's
    weights, not the label); batch_size changes the speed only."""

    output_dir: str
    tokenizer: object
    n: int
    settings: SampleSettings
    batch_size: int = 100

    def write(self, model, label: str) -> pd.DataFrame:
        """:func:`~diffuse_utils.biographies.parse_biographies` of ``model``'s
        biographies: a row per generation, none dropped (saved as ``bio-<label>``)."""
        (texts,), _ = cached_generations(
            self.output_dir,
            model,
            self.tokenizer,
            [BIOGRAPHY_PROMPT],
            self.n,
            self.settings,
            label=f"bio-{label}",
            batch_size=self.batch_size,
        )
        return parse_biographies(texts)


def loss_figure(histories: dict[str, pd.DataFrame], n_targets: int, window: int = 5):
    """The sampled loss of each run in ``histories`` (label -> tuning history) against
    its update, as a mean over ``window`` updates, and the minimum ``H(p*) = ln
    n_targets`` (uniform targets) as a dashed line. Returns the figure.
    Example: ``loss_figure({"Tuned-ID": history}, 210)``."""
    figure, ax = panels(1)
    for label, history in histories.items():
        rows = history.dropna(subset=["loss"])
        ax.plot(
            rows["update"],
            rows["loss"].rolling(window, min_periods=1).mean(),
            label=f"{label} ({window}-update mean)",
        )
    minimum = f"H(p*) = ln {n_targets}"
    ax.axhline(np.log(n_targets), linestyle="--", color="grey", label=minimum)
    whole_ticks(ax)
    ax.set(
        xlabel="update",
        ylabel="loss",
        title="Tuned-ID: loss on biography openings (sampled estimate)",
    )
    ax.legend()
    return figure


def format_row(frame: pd.DataFrame) -> dict:
    """The shares of one model's parsed biographies that are well-formed, copy the
    prompt's example person, stop after the name, have no braced field or 1-5 fields,
    and have an accomplishments field of five words or more.
    Example: one well-formed biography of two gives ``{"well-formed": 0.5, ...}``."""
    words = frame["accomplishments"].fillna("").str.split().str.len()
    return {
        "well-formed": frame["problem"].isna().mean(),
        "copies the example": frame["copies_example"].mean(),
        "stops after the name": (frame["fields"] == 1).mean(),
        "no braced fields": (frame["problem"] == "no braced fields").mean(),
        "1-5 fields": frame["problem"].str.endswith("of 6 fields", na=False).mean(),
        "accomplishment of 5+ words": words.ge(5).mean(),
    }


def format_table(bios: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """:func:`format_row` of each model (name -> parsed biographies), a row each."""
    return pd.DataFrame({name: format_row(frame) for name, frame in bios.items()}).T


def top_five(bios: dict[str, pd.DataFrame], k: int = 5) -> pd.DataFrame:
    """The paper's Table 2 for each model: a row per (model, rank), a column per
    attribute, each cell ``"value (count)"`` (case and spacing ignored, shown in the
    commonest spelling); blank below an attribute's last value.
    Example: genders Female, Female, Male read ``Female (2)`` and ``Male (1)``."""

    def table(frame):
        columns = {
            a: [
                f"{v} ({c})" for v, c in top_values(frame[a], k).itertuples(index=False)
            ]
            for a in ATTRIBUTES
        }
        return pd.DataFrame(
            {a: values + [""] * (k - len(values)) for a, values in columns.items()}
        )

    return pd.concat(
        {name: table(frame) for name, frame in bios.items()}, names=["model", "rank"]
    )


def diversity_at_equal_size(
    well_formed: dict[str, pd.DataFrame], min_count: int, seed: int = 0
) -> tuple[pd.DataFrame, int]:
    """``(table, size)``: the unigram diversity of the accomplishments and of whole
    biographies of each model with at least ``min_count`` well-formed biographies,
    each measured on ``size`` of them (the smallest count among those models), drawn
    with ``seed`` (:func:`~diffuse_utils.biographies.unigram_diversity_at`). A row per
    (model, text); no rows and a size of 0 when no model has ``min_count``.
    Example: models of 30 and 25 biographies with ``min_count=20`` are read on 25."""
    enough = {name: f for name, f in well_formed.items() if len(f) >= min_count}
    size = min((len(frame) for frame in enough.values()), default=0)
    texts = {
        "accomplishments": lambda f: list(f["accomplishments"].fillna("")),
        "whole biography": lambda f: list(f.apply(biography_text, axis=1)),
    }
    rows = [
        {
            "model": name,
            "text": text,
            "unigram diversity": unigram_diversity_at(read(frame), size, seed),
        }
        for name, frame in enough.items()
        for text, read in texts.items()
        if size > 0
    ]
    return pd.DataFrame(rows), size


def example_rows(
    well_formed: dict[str, pd.DataFrame], n: int, seed: int = 0
) -> dict[str, list[str]]:
    """Model -> ``n`` of its well-formed biographies, drawn at random (one generator
    seeded with ``seed``, drawn in the models' order), in the order generated, each its
    six fields joined by ``" | "`` (a field it did not write as ``MISSING``); blank
    strings where a model has fewer.
    Example: ``pd.DataFrame(example_rows(well_formed, 5))``, a column per model."""
    rng = np.random.default_rng(seed)
    examples = {}
    for name, frame in well_formed.items():
        picks = (
            rng.choice(len(frame), size=min(n, len(frame)), replace=False)
            if len(frame)
            else []
        )
        rows = [
            " | ".join(_field_text(frame.iloc[i][f]) for f in FIELDS)
            for i in sorted(picks)
        ]
        examples[name] = rows + [""] * (n - len(rows))
    return examples


def _field_text(value) -> str:
    """A biography field as an example shows it: "–" where it was not written."""
    missing = value is None or (isinstance(value, float) and np.isnan(value))
    return MISSING if missing else str(value)


def birth_place_match(
    bios: dict[str, pd.DataFrame], located: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    """A row per model: birth places given, how many the geocoder ``located``
    (``places.Geocoder.locate_all`` of each model's places), the distinct locations
    among them, and the match rate (located / given; NaN when none was given).
    Example: 4 places given and 3 located give a match rate of 0.75."""
    match = pd.DataFrame(
        {
            name: {
                "birth places given": int(frame["birth_place"].notna().sum()),
                "located": int(located[name]["matched"].sum()),
                "distinct locations": located[name].dropna().drop_duplicates().shape[0],
            }
            for name, frame in bios.items()
        }
    ).T
    given = match["birth places given"]
    match["match rate"] = match["located"] / given.where(given > 0)
    return match
