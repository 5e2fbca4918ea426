"""Chapter 5's comparison of models by their biographies
(diffuse_utils.biography_comparison), on biographies written by hand."""

import math

import matplotlib
import numpy as np
import pandas as pd

from diffuse_utils import SampleSettings, cached_generations
from diffuse_utils import biography_comparison as compare
from diffuse_utils.biographies import BIOGRAPHY_PROMPT, parse_biographies

matplotlib.use("Agg")
ADA = (
    "{Ada Obi}\n{Female}\n{May 2, 1931}\n{Lagos, Nigeria}\n{Nurse}\n"
    "{Led clinics across the delta.}"
)
BO = "{Bo Li}\n{Male}\n{1950}\n{Hanoi, Vietnam}\n{Poet}\n{Wrote.}"
DAVID = "{David Hippocampus}"


def test_writer_draws_once_under_the_key_the_chapter_drew_with(
    tmp_path, tiny_model, tokenizer
):
    settings = SampleSettings(max_new_tokens=6, seed=0, response_prefix="{")
    writer = compare.BiographyWriter(str(tmp_path), tokenizer, 2, settings, 2)
    bios = writer.write(tiny_model, "base")
    (texts,), _ = cached_generations(
        tmp_path,
        tiny_model,
        tokenizer,
        [BIOGRAPHY_PROMPT],
        2,
        label="bio-base",
        seed=0,
        max_new_tokens=6,
        response_prefix="{",
    )
    assert bios["text"].tolist() == texts and len(bios) == 2
    assert len(list(tmp_path.glob("generations/**/*.json"))) == 1  # one draw, reused


def test_format_table_counts_each_kind_of_biography():
    table = compare.format_table(
        {"base": parse_biographies([ADA, DAVID]), "tuned": parse_biographies([BO])}
    )
    base = table.loc["base"]
    assert base["well-formed"] == 0.5 and base["copies the example"] == 0.5
    assert base["stops after the name"] == 0.5 and base["1-5 fields"] == 0.5
    assert base["no braced fields"] == 0.0
    assert base["accomplishment of 5+ words"] == 0.5  # "Led clinics across the delta"
    assert table.loc["tuned", "accomplishment of 5+ words"] == 0.0  # "Wrote"


def test_top_five_pads_each_attribute_to_five_rows():
    table = compare.top_five({"base": parse_biographies([ADA, ADA, BO])})
    assert table.loc[("base", 0), "gender"] == "Female (2)"
    assert table.loc[("base", 1), "gender"] == "Male (1)"
    assert table.loc[("base", 2), "gender"] == ""
    assert len(table) == 5 and table.index.names == ["model", "rank"]


def test_diversity_at_equal_size_reads_every_model_on_the_smallest_count():
    well_formed = {
        "three": parse_biographies([ADA, ADA, BO]),
        "two": parse_biographies([BO, BO]),
        "one": parse_biographies([ADA]),  # under min_count: left out
    }
    table, size = compare.diversity_at_equal_size(well_formed, 2, seed=0)
    assert size == 2
    assert table["model"].tolist() == ["three", "three", "two", "two"]
    two = table[table["model"] == "two"].set_index("text")["unigram diversity"]
    assert two["accomplishments"] == 0.5  # "wrote wrote": 1 distinct of 2
    # "Bo Li Male 1950 Hanoi, Vietnam Poet Wrote" twice: 8 distinct words of 16
    assert two["whole biography"] == 0.5
    empty, none = compare.diversity_at_equal_size(well_formed, 4)
    assert none == 0 and empty.empty


def test_example_rows_join_the_fields_and_pad_a_short_model():
    rows = compare.example_rows({"base": parse_biographies([BO])}, 2, seed=0)
    assert rows == {"base": ["Bo Li | Male | 1950 | Hanoi, Vietnam | Poet | Wrote", ""]}
    frame = parse_biographies([BO]).astype(object)
    frame.loc[0, "gender"], frame.loc[0, "birth_date"] = np.nan, None   # not written
    rows = compare.example_rows({"base": frame}, 1, seed=0)
    assert rows == {"base": ["Bo Li | – | – | Hanoi, Vietnam | Poet | Wrote"]}


def test_birth_place_match_rates_the_located_places():
    bios = {
        "base": pd.DataFrame({"birth_place": ["Lagos, Nigeria", None, "X, Y"]}),
        "none": pd.DataFrame({"birth_place": [None]}),
    }
    located = {
        "base": pd.DataFrame(
            {"latitude": [6.5, np.nan], "longitude": [3.4, np.nan]}
        ).assign(matched=[True, False]),
        "none": pd.DataFrame({"latitude": [np.nan], "longitude": [np.nan]}).assign(
            matched=[False]
        ),
    }
    match = compare.birth_place_match(bios, located)
    assert match.loc["base"].tolist()[:3] == [2, 1, 1]
    assert match.loc["base", "match rate"] == 0.5
    assert math.isnan(match.loc["none", "match rate"])


def test_loss_figure_draws_each_run_and_the_minimum():
    history = pd.DataFrame(
        {"update": [1, 2, 3], "loss": [6.0, np.nan, 4.0]}  # a row without a loss
    )
    figure = compare.loss_figure({"Tuned-ID": history}, 210, window=2)
    (ax,) = figure.axes
    run, minimum = ax.lines
    assert run.get_ydata().tolist() == [6.0, 5.0]  # the 2-update mean
    assert minimum.get_ydata()[0] == np.log(210)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["Tuned-ID (2-update mean)", "H(p*) = ln 210"]
