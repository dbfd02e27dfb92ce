"""The one source of country names (pycountry: ISO 3166-1 from Debian's iso-codes, with
its translations) and a representative time zone per country (the IANA tz data).

Names are given in the active language: iso-codes' Welsh catalogue names about half of
the world's countries (every one near the United Kingdom among them); the rest keep
their English name in Welsh pages until iso-codes translates them.
"""

from __future__ import annotations

import gettext
from functools import cache
from importlib import resources

import pycountry
from django.utils import translation
from django.utils.translation import gettext as _

# Shown first in the residence list: most families live here.
FIRST = ["GB", "IE"]
# iso-codes' official names where a shorter one is what people say.
_PLAIN_NAMES = {
    "BO": "Bolivia",
    "IR": "Iran",
    "KP": "North Korea",
    "KR": "South Korea",
    "LA": "Laos",
    "MD": "Moldova",
    "RU": "Russia",
    "SY": "Syria",
    "TW": "Taiwan",
    "TZ": "Tanzania",
    "VE": "Venezuela",
    "VN": "Vietnam",
    "BN": "Brunei",
    "FM": "Micronesia",
    "PS": "Palestine",
    "VA": "Vatican City",
}


@cache
def _english_names() -> dict[str, str]:
    """ISO 3166-1 alpha-2 code → English name, e.g. "GB" → "United Kingdom"."""
    names = {}
    for country in pycountry.countries:
        names[country.alpha_2] = getattr(country, "common_name", None) or country.name
    names.update(_PLAIN_NAMES)
    return names


@cache
def _catalogue(language: str) -> gettext.NullTranslations:
    base = language.split("-")[0].lower()
    try:
        return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[base])
    except OSError:
        return gettext.NullTranslations()


def _translated(code: str, language: str) -> str:
    english = _english_names()[code]
    if language.split("-")[0].lower() == "en":
        return english
    catalogue = _catalogue(language)
    # iso-codes' msgids are its `name` (and `common_name`); try the one shown first.
    country = pycountry.countries.get(alpha_2=code)
    for msgid in (english, getattr(country, "common_name", None), getattr(country, "name", None)):
        if msgid and (text := catalogue.gettext(msgid)) != msgid:
            return text
    return english


def country_names() -> dict[str, str]:
    """Code → name in the active language."""
    language = translation.get_language() or "en"
    return {code: _translated(code, language) for code in _english_names()}


def country_choices() -> list[tuple[str, str]]:
    """Choices for a residence field: the usual ones first, then by name."""
    names = country_names()
    ordered = sorted(
        ((code, name) for code, name in names.items() if code not in FIRST),
        key=lambda item: item[1].casefold(),
    )
    return [*[(code, names[code]) for code in FIRST], *ordered]


@cache
def country_time_zones() -> dict[str, list[str]]:
    zones: dict[str, list[str]] = {}
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line and not line.startswith("#"):
            code, _coordinates, zone, *_rest = line.split("\t")
            zones.setdefault(code, []).append(zone)
    return zones


def country_name(code: str) -> str:
    """The country's name in the active language; the code itself when unknown."""
    code = (code or "").upper()
    if code not in _english_names():
        return code or _("Unknown")
    return _translated(code, translation.get_language() or "en")


def single_time_zone(code: str) -> str | None:
    """The country's time zone when it has exactly one; None when it spans several."""
    zones = country_time_zones().get((code or "").upper(), [])
    return zones[0] if len(zones) == 1 else None
