"""Biographies (chapter 5): parsing, per-attribute figures, the Tuned-ID targets, geocoding and the map."""
from collections import Counter

import matplotlib
import numpy as np
import pandas as pd
import pytest

from diffuse_utils import encode_task, entropy
from diffuse_utils.encoding import end_of_turn_ids
from diffuse_utils.metrics import unigram_diversity
from diffuse_utils.biographies import (BIOGRAPHY_PROMPT, attribute_summary, biography_task, biography_text,
                                       parse_biographies, parse_biography, top_values, unigram_diversity_at)
from diffuse_utils.places import Geocoder, land_polygons

matplotlib.use("Agg")
ADA = "{Ada Obi}\n{Female}\n{May 2, 1931}\n{Lagos, Nigeria}\n{Nurse}\n{Led clinics across the delta.}"


def test_parse_a_well_formed_biography():
    row = parse_biography("Sure!\n" + ADA + "\nAnything else?")
    assert row["problem"] is None and row["fields"] == 6
    assert (row["first_name"], row["last_name"], row["gender"], row["birth_year"]) == ("Ada", "Obi", "Female", 1931)
    assert (row["city"], row["country"], row["birth_place"]) == ("Lagos", "Nigeria", "Lagos, Nigeria")
    assert row["profession"] == "Nurse" and row["accomplishments"] == "Led clinics across the delta"


def test_parse_reads_the_first_six_fields_and_checks_each_attribute():
    text = ("{David  Hippocampus}\n{Gender - Female/Male/Non-binary}\n{sometime}\n{Cambridge, Massachusetts, USA}\n"
            "{Neuroscientist}\n{Did things}\n{extra}")
    row = parse_biography(text)
    assert row["problem"] is None and row["fields"] == 7
    assert row["name"] == "David Hippocampus" and row["gender"] is None and row["birth_year"] is None
    assert row["birth_place"] == "Cambridge, USA"
    assert parse_biography("{Madonna}\n{non-binary}\n{1958}\n{Bay City}\n{Singer}\n{Sang}")["last_name"] is None
    assert parse_biography("{Madonna}\n{non-binary}\n{1958}\n{Bay City}\n{Singer}\n{Sang}")["gender"] == "Non-binary"
    no_country = parse_biography("{Madonna}\n{F}\n{1958}\n{Bay City}\n{Singer}\n{Sang}")
    assert no_country["birth_place"] is None and no_country["city"] is None and no_country["gender"] == "Female"


def test_malformed_generations_are_kept_and_say_why():
    bios = parse_biographies([ADA, "Here is a person: Ada, a nurse.", "{Ada Obi}\n{Female}\n{1931}", ADA.replace(
        "Ada Obi", "david hippocampus")])
    assert len(bios) == 4
    assert bios["problem"].fillna("ok").tolist() == ["ok", "no braced fields", "3 of 6 fields", "ok"]
    assert bios["first_name"].isna().tolist() == [False, True, False, False]  # fields present are still read
    assert bios.loc[2, "gender"] == "Female" and bios.loc[2, "birth_year"] == 1931 and pd.isna(bios.loc[2, "profession"])
    assert bios["copies_example"].tolist() == [False, False, False, True]
    assert str(bios["birth_year"].dtype) == "Int64"


def test_attribute_summary_counts_case_insensitively():
    texts = [ADA, ADA.replace("Ada", "ada"), ADA.replace("Ada Obi", "Bo Li").replace("1931", "1990"), "junk"]
    summary = attribute_summary(parse_biographies(texts))
    assert summary.loc["first_name", "answered"] == 3 and summary.loc["first_name", "coverage"] == 2
    assert summary.loc["first_name", "entropy"] == pytest.approx(entropy([2, 1]))
    assert summary.loc["birth_year", "coverage"] == 2 and summary.loc["gender", "entropy"] == 0.0


def test_top_values_shows_the_commonest_spelling():
    table = top_values(parse_biographies([ADA, ADA, ADA.replace("Lagos", "LAGOS"), ADA.replace("Lagos", "Abuja")])
                       ["birth_place"], k=2)
    assert table.to_dict("list") == {"value": ["Lagos, Nigeria", "Abuja, Nigeria"], "count": [3, 1]}


def test_unigram_diversity_at_equal_size():
    texts = ["a b", "a c", "d e", "a a"]
    assert unigram_diversity_at(texts, 4) == unigram_diversity(texts) == 5 / 8
    assert unigram_diversity_at(texts, 2, seed=3) == unigram_diversity_at(texts, 2, seed=3)
    with pytest.raises(ValueError, match="between 1 and the 4 texts"):
        unigram_diversity_at(texts, 5)
    empty_field = parse_biographies([ADA.replace("{Nurse}", "{}")]).iloc[0]
    assert biography_text(empty_field) == "Ada Obi Female May 2, 1931 Lagos, Nigeria Led clinics across the delta"
    assert biography_text(parse_biography(ADA)) == "Ada Obi Female May 2, 1931 Lagos, Nigeria Nurse " \
                                                    "Led clinics across the delta"


def test_tuned_id_targets_are_balanced_openings():
    task = biography_task()
    assert task.prompts == [BIOGRAPHY_PROMPT] and not task.end_of_turn and not task.braces
    assert len(task.targets) == 210 and all(t.endswith("}\n{") for t in task.targets)
    bios = parse_biographies([t + "Did something notable.}" for t in task.targets])
    assert bios["problem"].isna().all() and bios[["first_name", "last_name", "birth_place"]].notna().all().all()
    assert Counter(bios["gender"]) == {"Female": 100, "Male": 100, "Non-binary": 10}
    assert bios["birth_year"].between(1900, 2005).all() and bios["birth_year"].nunique() > 80
    geocoder = Geocoder()
    continents = Counter(geocoder._countries[geocoder.country_code(c)]["continentcode"] for c in bios["country"])
    assert continents == {code: 35 for code in ("AF", "AS", "EU", "NA", "SA", "OC")}
    assert geocoder.locate_all(bios["city"], bios["country"])["matched"].all()


def test_opening_targets_have_no_end_of_turn_and_start_the_full_answer(tokenizer):
    task = biography_task(response_prefix="{")
    encoded = encode_task(tokenizer, task)
    full = tokenizer(task.targets[0][1:] + "Did something notable.}", add_special_tokens=False)["input_ids"]
    assert full[:len(encoded.target_ids[0])] == encoded.target_ids[0]
    assert all(ids[-len(end_of_turn_ids(tokenizer)):] != end_of_turn_ids(tokenizer) for ids in encoded.target_ids)


@pytest.fixture(scope="module")
def geocoder():
    return Geocoder()


def test_geocoder_matches_city_within_country(geocoder):
    assert geocoder.locate("Cambridge", "USA") == pytest.approx((42.37, -71.11), abs=0.05)
    assert geocoder.locate("cambridge", "United Kingdom") == pytest.approx((52.2, 0.12), abs=0.05)
    assert geocoder.locate("Paris", None) == pytest.approx((48.85, 2.35), abs=0.05)
    assert geocoder.locate("Atlantis", "Greece") is None and geocoder.locate("Paris", "Japan") is None
    assert geocoder.country_code("UK") == "GB" and geocoder.country_code("Massachusetts") is None
    frame = geocoder.locate_all(["Lagos", "Nowhere", np.nan, "Lima"], ["Nigeria", "Peru", "Peru", np.nan])
    assert frame["matched"].tolist() == [True, False, False, True] and np.isnan(frame.loc[1, "latitude"])


def test_land_outline_decodes_to_closed_rings_on_the_globe():
    polygons = land_polygons()
    rings = [ring for polygon in polygons for ring in polygon]
    assert len(polygons) > 100 and all(ring[0] == pytest.approx(ring[-1]) for ring in rings)
    lons, lats = zip(*[p for ring in rings for p in ring])
    assert -180 <= min(lons) < -170 and 170 < max(lons) <= 180 and -90 <= min(lats) and max(lats) < 85


def test_world_maps_draw_one_panel_per_model():
    from diffuse_utils import plots
    points = {"base": pd.DataFrame({"latitude": [6.45, np.nan], "longitude": [3.39, np.nan]}),
              "tuned": pd.DataFrame({"latitude": [48.85], "longitude": [2.35]})}
    fig = plots.world_maps(points, land_polygons()[:5])
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 2 and visible[0].get_title() == "base: 1 birth places located"
