"""Reading the booking emails as a mail client would: the HTML part's visible words and
the calendar part (its MIME type with the method, and the .ics parsed by icalendar)."""

from __future__ import annotations

import re
from email.message import Message
from html.parser import HTMLParser

from django.core.mail import EmailMultiAlternatives
from icalendar import Calendar


class _Visible(HTMLParser):
    """The text a person sees: no <head> (title), no comments; links' addresses too."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hrefs: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("head", "style", "script"):
            self._hidden += 1
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")
        if tag in ("p", "tr", "td", "th", "br", "div", "table"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("head", "style", "script"):
            self._hidden -= 1
        if tag in ("p", "tr", "td", "th", "div"):
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_of(message: EmailMultiAlternatives) -> str:
    htmls = [content for content, mimetype in message.alternatives if mimetype == "text/html"]
    assert len(htmls) == 1, "one HTML part"
    return str(htmls[0])


def visible(html: str) -> _Visible:
    parser = _Visible()
    parser.feed(html)
    parser.close()
    return parser


def words(text: str) -> list[str]:
    """Words in order, a trailing ':' dropped (a label is 'With:' in the text and a
    table heading 'With' in the HTML)."""
    return [word.rstrip(":") for word in text.split() if word.rstrip(":")]


def same_words(message: EmailMultiAlternatives) -> tuple[list[str], list[str]]:
    return words(str(message.body)), words("".join(visible(html_of(message)).parts))


def calendar_of(message: EmailMultiAlternatives) -> tuple[Message, Calendar]:
    parts = [
        part
        for part in message.attachments
        if isinstance(part, Message) and part.get_content_type() == "text/calendar"
    ]
    assert len(parts) == 1, "one calendar part"
    part = parts[0]
    return part, Calendar.from_ical(part.get_payload(decode=True))


def has_calendar(message: EmailMultiAlternatives) -> bool:
    return any(
        isinstance(part, Message) and part.get_content_type() == "text/calendar"
        for part in message.attachments
    )


def links(text: str) -> list[str]:
    return re.findall(r"https?://\S+", text)
