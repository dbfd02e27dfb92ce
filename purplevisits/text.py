"""Free text that must stay on one line: names, and anything that reaches an email
header (a subject) or a one-line label.

A line break in a header is refused by Django (``BadHeaderError``) and, unchecked,
would let a sender add headers of their own. Forms refuse such text with a message by
the field (``single_line``); text already stored is collapsed to one line wherever a
header is built (``one_line``), so an old row can never crash an email.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

SINGLE_LINE_MESSAGE = _("Write this on one line, without line breaks, tabs or control characters.")


def _is_control(character: str) -> bool:
    # Cc: control characters (\n, \r, \t, NUL…); Zl/Zp: Unicode line and paragraph
    # separators, which some mail clients also break on.
    return unicodedata.category(character) in ("Cc", "Zl", "Zp")


def single_line(value: str) -> None:
    """Validator for form fields whose text is one line by nature."""
    if any(_is_control(character) for character in value):
        raise ValidationError(SINGLE_LINE_MESSAGE, code="not_single_line")


def one_line(value: str) -> str:
    """``value`` with every run of whitespace or control characters made one space."""
    cleaned = "".join(" " if _is_control(character) else character for character in value)
    return " ".join(cleaned.split())
