"""JSON from a WebSocket, bounded before it is parsed (docs/security.md, "Socket messages").

Python's ``json`` parser recurses once per ``[`` or ``{``: about a thousand of them (3 KB)
raise ``RecursionError``, which no consumer expects, and the socket died with 1011. Every
consumer reads client frames through :func:`socket_message`, which refuses a frame that
is binary, too large or nested too deeply *before* ``json.loads`` sees it, and returns
either the message (a JSON object with a string ``type``) or a :class:`Refusal` that the
consumer sends back as one ``error`` message; the socket stays open.

The depth bound is a linear scan that counts brackets outside JSON strings. It counts at
least as deep as the parser would go on any text, valid or not: the parser only nests at
a bracket outside a string, strings start and end at the same quotes for both, and the
parser stops at the first character that is not JSON, while the scan reads on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

# No message of the contract is nested more than two levels; 32 leaves room to grow
# and is far below the parser's recursion limit (about 1000).
MAX_DEPTH = 32

# A whole JSON string (escapes included), a lone quote (an unterminated string: the
# parser refuses it and the rest is text to it), or one bracket.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|"|[\[\]{}]', re.DOTALL)


@dataclass(frozen=True)
class Refusal:
    """Why a frame was not read: sent to the client as ``{"type": "error", ...}``."""

    code: str
    message: str

    def as_error(self) -> dict[str, str]:
        return {"type": "error", "code": self.code, "message": self.message}


def json_depth(text: str, *, stop_above: int | None = None) -> int:
    """The deepest nesting of ``[``/``{`` outside strings (0 for a scalar).

    With ``stop_above``, the scan ends as soon as the depth passes it (the answer is
    then ``stop_above + 1``).
    """
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        found = match.group()
        if found[0] == '"':
            if len(found) == 1:
                break  # unterminated string: everything after it is inside it
            continue
        if found in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    break
        else:
            depth = max(0, depth - 1)
    return deepest


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def socket_message(
    text_data: str | None,
    *,
    max_bytes: int,
    max_depth: int = MAX_DEPTH,
) -> dict[str, Any] | Refusal:
    """The client's message as a dict with a string ``type``, or why it was refused.

    ``text_data`` is the frame's text (``None`` for a binary frame: refused).
    ``max_bytes`` bounds the UTF-8 size of the text; ``max_depth`` its nesting.
    Standard JSON only (``NaN``/``Infinity`` are refused).
    """
    if text_data is None:
        return Refusal("bad_message", _("Messages must be JSON text, not binary."))
    # Characters first: a string longer than max_bytes characters is too large without
    # encoding it. (surrogatepass: a frame from a test client may hold lone surrogates.)
    if len(text_data) > max_bytes or len(text_data.encode("utf-8", "surrogatepass")) > max_bytes:
        return Refusal(
            "too_large",
            _("Messages can be at most %(size)s.") % {"size": _size(max_bytes)},
        )
    # Counting brackets is a quick bound: every message of the contract has fewer.
    brackets = text_data.count("[") + text_data.count("{")
    if brackets > max_depth and json_depth(text_data, stop_above=max_depth) > max_depth:
        return Refusal(
            "too_deep",
            _("Messages can be nested at most %(depth)d levels deep.") % {"depth": max_depth},
        )
    try:
        message = json.loads(text_data, parse_constant=_no_constants)
    except (ValueError, RecursionError):  # RecursionError: cannot happen after the scan
        return Refusal("bad_json", _("The message is not valid JSON."))
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return Refusal("bad_message", _("A message is a JSON object with a 'type'."))
    return message


def _size(max_bytes: int) -> str:
    if max_bytes % 1024 == 0:
        return _("%(kb)d KB") % {"kb": max_bytes // 1024}
    return _("%(bytes)d bytes") % {"bytes": max_bytes}
