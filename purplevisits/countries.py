"""Country names and a representative time zone per country, from the IANA tz data.

The `tzdata` package ships `iso3166.tab` (code → name) and `zone.tab` (code → zones);
using it avoids a hand-kept list that drifts.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


def _rows(filename: str) -> list[list[str]]:
    text = resources.files("tzdata").joinpath("zoneinfo", filename).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


@cache
def country_names() -> dict[str, str]:
    """ISO 3166-1 alpha-2 code → English short name, e.g. "GB" → "Britain (UK)"."""
    names = {code: name for code, name, *_ in _rows("iso3166.tab")}
    # The tz file uses short forms; a few read better in full on a form.
    names.update({"GB": "United Kingdom", "US": "United States"})
    return names


@cache
def country_choices() -> list[tuple[str, str]]:
    names = country_names()
    ordered = sorted(names.items(), key=lambda item: item[1])
    return [("GB", names["GB"]), *[item for item in ordered if item[0] != "GB"]]


@cache
def country_time_zones() -> dict[str, list[str]]:
    zones: dict[str, list[str]] = {}
    for code, _coordinates, zone, *_ in _rows("zone.tab"):
        zones.setdefault(code, []).append(zone)
    return zones


def country_name(code: str) -> str:
    return country_names().get((code or "").upper(), code or "Unknown")


def single_time_zone(code: str) -> str | None:
    """The country's time zone when it has exactly one; None when it spans several."""
    zones = country_time_zones().get((code or "").upper(), [])
    return zones[0] if len(zones) == 1 else None
