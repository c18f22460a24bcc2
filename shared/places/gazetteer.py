"""A versioned gazetteer of administrative units, their villages and everyday names.

Unit sets are versioned: `2020` is the 15 communes and wards of the former city, `2025` the
three wards in force since 2025-07-01. An old→new crosswalk (operator data, loaded from a file)
resolves a former unit to the ward that is current now, and rolls statistics up into either set.
"""

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.places.text import words

SET_BEFORE = "2020"
SET_AFTER = "2025"
UNKNOWN_WARD = "unknown"
_MIN_BARE_WORDS = 2  # a one-word name ("Cộn") only matches with its kind ("chợ Cộn")


class Unit(BaseModel):
    """An administrative unit (phường, xã) of one unit set."""

    model_config = ConfigDict(frozen=True)

    slug: str
    name: str
    kind: str
    unit_set: str
    aliases: tuple[str, ...] = ()
    households: int | None = None  # operator data; unknown (None) in the reference file


class Place(BaseModel):
    """A village, residential group or everyday name inside a unit, added by an operator."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    unit: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlaceMatch:
    """A place name found in a text, and the ward that is current for it."""

    ward: str
    unit: str
    name: str
    term: str
    via: str  # "unit", "former_unit", "place" or "location"


@dataclass(frozen=True)
class _Entry:
    unit: str
    name: str
    is_place: bool


class Gazetteer:
    """Units of every known set, the crosswalk between them, and the places inside them."""

    def __init__(
        self,
        units: Iterable[Unit],
        current_set: str,
        crosswalk: Mapping[str, str] | None = None,
        places: Iterable[Place] = (),
        centroids: Mapping[str, tuple[float, float]] | None = None,
        demo: bool = False,
    ) -> None:
        self.units = {unit.slug: unit for unit in units}
        self.demo = demo  # the unit file says its figures (households) are demo data
        self.centroids = dict(centroids or {})
        self.current_set = current_set
        self.crosswalk = dict(crosswalk or {})
        self.places = tuple(places)
        self._check()
        self._terms = self._index()
        self._longest = max((len(term) for term in self._terms), default=1)

    @classmethod
    def load(
        cls,
        units_file: Path,
        crosswalk_file: Path | None = None,
        extra_file: Path | None = None,
        current_set: str | None = None,
    ) -> "Gazetteer":
        """Load the unit file, the optional crosswalk and the optional operator places.

        Without a crosswalk the current set is the former units (the only confirmed data);
        with one, it is the crosswalk's target set unless `current_set` says otherwise.
        """
        raw_units = json.loads(units_file.read_text(encoding="utf-8"))
        units = _read_units(raw_units)
        crosswalk: dict[str, str] = {}
        target = SET_BEFORE
        if crosswalk_file is not None:
            raw = json.loads(crosswalk_file.read_text(encoding="utf-8"))
            crosswalk = dict(raw["mapping"])
            target = str(raw.get("to_set", SET_AFTER))
        places: list[Place] = []
        centroids: dict[str, tuple[float, float]] = {}
        if extra_file is not None:
            extra = json.loads(extra_file.read_text(encoding="utf-8"))
            places = [Place.model_validate(place) for place in extra.get("places", [])]
            centroids = {
                k: (float(v[0]), float(v[1])) for k, v in extra.get("centroids", {}).items()
            }
        demo = bool(raw_units.get("demo", False))
        return cls(units, current_set or target, crosswalk, places, centroids, demo)

    def current_units(self) -> list[Unit]:
        """The units of the set in force, in file order."""
        return [unit for unit in self.units.values() if unit.unit_set == self.current_set]

    def is_current(self, slug: str) -> bool:
        unit = self.units.get(slug)
        return unit is not None and unit.unit_set == self.current_set

    def current(self, slug: str) -> str | None:
        """The current ward for a unit slug of any set (old slugs go through the crosswalk)."""
        if self.is_current(slug):
            return slug
        mapped = self.crosswalk.get(slug)
        return mapped if mapped is not None and self.is_current(mapped) else None

    def in_set(self, slug: str, unit_set: str) -> str | None:
        """The unit of `unit_set` that covers `slug` (old→new, or itself)."""
        unit = self.units.get(slug)
        if unit is None:
            return None
        if unit.unit_set == unit_set:
            return slug
        mapped = self.crosswalk.get(slug)
        if mapped is not None and self.units[mapped].unit_set == unit_set:
            return mapped
        return None

    def rollup(self, counts: Mapping[str, int], unit_set: str) -> dict[str, int]:
        """Re-key per-unit counts to `unit_set`; what cannot be placed goes to `unknown`."""
        result: dict[str, int] = {}
        for slug, count in counts.items():
            key = self.in_set(slug, unit_set) or UNKNOWN_WARD
            result[key] = result.get(key, 0) + count
        return result

    def resolve(self, name: str) -> str | None:
        """The current ward for a unit slug, a unit or place name, in any spelling."""
        if name in self.units:
            return self.current(name)
        matches = self.find(name)
        return matches[0].ward if matches else None

    def find(self, text: str) -> list[PlaceMatch]:
        """Every known place named in `text`, longest name first at each position."""
        tokens = words(text)
        found: list[PlaceMatch] = []
        i = 0
        while i < len(tokens):
            size, entries = self._match_at(tokens, i)
            if not entries:
                i += 1
                continue
            match = self._pick(entries, " ".join(tokens[i : i + size]))
            if match is not None:
                found.append(match)
            i += size
        return found

    def nearest(self, latitude: float, longitude: float, max_km: float) -> PlaceMatch | None:
        """The unit whose centroid is nearest to a shared location, within `max_km`."""
        best: tuple[float, str] | None = None
        for slug, (lat, lon) in self.centroids.items():
            distance = _haversine_km(latitude, longitude, lat, lon)
            if distance <= max_km and (best is None or distance < best[0]):
                best = (distance, slug)
        if best is None:
            return None
        ward = self.current(best[1])
        if ward is None:
            return None
        name = self.units[best[1]].name
        return PlaceMatch(ward=ward, unit=best[1], name=name, term=name, via="location")

    def _match_at(self, tokens: list[str], start: int) -> tuple[int, list[_Entry]]:
        for size in range(min(self._longest, len(tokens) - start), 0, -1):
            entries = self._terms.get(tuple(tokens[start : start + size]))
            if entries:
                return size, entries
        return 0, []

    def _pick(self, entries: list[_Entry], term: str) -> PlaceMatch | None:
        ranked = sorted(entries, key=lambda e: (e.is_place, not self.is_current(e.unit)))
        for entry in ranked:
            ward = self.current(entry.unit)
            if ward is None:
                continue
            via = "place" if entry.is_place else "unit" if ward == entry.unit else "former_unit"
            return PlaceMatch(ward=ward, unit=entry.unit, name=entry.name, term=term, via=via)
        return None

    def _index(self) -> dict[tuple[str, ...], list[_Entry]]:
        terms: dict[tuple[str, ...], list[_Entry]] = {}
        for unit in self.units.values():
            entry = _Entry(unit.slug, unit.name, is_place=False)
            for term in _terms_for(unit.name, unit.kind, unit.aliases):
                terms.setdefault(term, []).append(entry)
        for place in self.places:
            entry = _Entry(place.unit, place.name, is_place=True)
            for term in _terms_for(place.name, place.kind, place.aliases):
                terms.setdefault(term, []).append(entry)
        return terms

    def _check(self) -> None:
        for old, new in self.crosswalk.items():
            if old not in self.units or new not in self.units:
                raise ValueError(f"crosswalk names an unknown unit: {old} -> {new}")
        for place in self.places:
            if place.unit not in self.units:
                raise ValueError(f"place {place.name!r} is in an unknown unit {place.unit!r}")
        for slug in self.centroids:
            if slug not in self.units:
                raise ValueError(f"centroid of an unknown unit {slug!r}")


def _terms_for(name: str, kind: str, aliases: Iterable[str]) -> set[tuple[str, ...]]:
    terms = {tuple(words(f"{kind} {name}"))}
    for candidate in (name, *aliases):
        term = tuple(words(candidate))
        if len(term) >= _MIN_BARE_WORDS:
            terms.add(term)
    return terms


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def _read_units(raw: Mapping[str, Any]) -> list[Unit]:
    change = raw.get("boundary_change") or {}
    return [
        *(_unit(u, SET_BEFORE) for u in raw.get("units", [])),
        *(_unit(u, SET_AFTER) for u in change.get("units_after", [])),
    ]


def _unit(raw: Mapping[str, Any], unit_set: str) -> Unit:
    return Unit(
        slug=raw["slug"],
        name=raw["name"],
        kind=raw["kind"],
        unit_set=unit_set,
        households=raw.get("households"),
    )
