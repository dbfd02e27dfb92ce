"""The family's local time: a time zone for their country of residence, when there is one.

A country with several time zones (the United States, Australia, Brazil…) has no
single answer, so we say that we cannot tell rather than guess.
"""

from __future__ import annotations

import zoneinfo

from purplevisits.countries import single_time_zone


def time_zone_for_country(country_code: str) -> zoneinfo.ZoneInfo | None:
    """The country's time zone, or None when it has several (or is unknown)."""
    name = single_time_zone((country_code or "").strip())
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
