"""The family's local time: a time zone for their country of residence, when there is one.

A country with several time zones (the United States, Australia, Brazil…) has no
single answer, so we say that we cannot tell rather than guess.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from pathlib import Path

# Countries many families live in, each with one time zone. Kept in the code so the
# answer does not depend on the operating system's time zone tables.
COUNTRY_TIME_ZONES: dict[str, str] = {
    "GB": "Europe/London",
    "IM": "Europe/Isle_of_Man",
    "JE": "Europe/Jersey",
    "GG": "Europe/Guernsey",
    "IE": "Europe/Dublin",
    "FR": "Europe/Paris",
    "DE": "Europe/Berlin",
    "NL": "Europe/Amsterdam",
    "BE": "Europe/Brussels",
    "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon",
    "IT": "Europe/Rome",
    "PL": "Europe/Warsaw",
    "LT": "Europe/Vilnius",
    "LV": "Europe/Riga",
    "RO": "Europe/Bucharest",
    "BG": "Europe/Sofia",
    "AL": "Europe/Tirane",
    "GR": "Europe/Athens",
    "TR": "Europe/Istanbul",
    "SE": "Europe/Stockholm",
    "NO": "Europe/Oslo",
    "DK": "Europe/Copenhagen",
    "CZ": "Europe/Prague",
    "SK": "Europe/Bratislava",
    "HU": "Europe/Budapest",
    "SO": "Africa/Mogadishu",
    "NG": "Africa/Lagos",
    "GH": "Africa/Accra",
    "KE": "Africa/Nairobi",
    "ZA": "Africa/Johannesburg",
    "ZW": "Africa/Harare",
    "IN": "Asia/Kolkata",
    "PK": "Asia/Karachi",
    "BD": "Asia/Dhaka",
    "LK": "Asia/Colombo",
    "CN": "Asia/Shanghai",
    "HK": "Asia/Hong_Kong",
    "PH": "Asia/Manila",
    "VN": "Asia/Ho_Chi_Minh",
    "AE": "Asia/Dubai",
    "JM": "America/Jamaica",
    "TT": "America/Port_of_Spain",
    "BB": "America/Barbados",
    "NZ": "Pacific/Auckland",
}

ZONE_TAB = Path("/usr/share/zoneinfo/zone.tab")


@lru_cache(maxsize=1)
def _system_single_zone_countries() -> dict[str, str]:
    """Countries with exactly one zone in the system's zone.tab (empty if absent)."""
    zones: dict[str, list[str]] = {}
    try:
        lines = ZONE_TAB.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    for line in lines:
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) >= 3:
            zones.setdefault(parts[0], []).append(parts[2])
    return {country: names[0] for country, names in zones.items() if len(names) == 1}


def time_zone_for_country(country_code: str) -> zoneinfo.ZoneInfo | None:
    """The country's time zone, or None when it has several (or is unknown)."""
    code = (country_code or "").strip().upper()
    name = COUNTRY_TIME_ZONES.get(code) or _system_single_zone_countries().get(code)
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
