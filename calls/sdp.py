"""Checks on a client's SDP offer before it reaches the relay."""

from __future__ import annotations

from typing import Any

from aiortc import sdp as aiortc_sdp

MAX_MEDIA_SECTIONS = 8


class SdpError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_offer(value: Any, *, monitor: bool) -> aiortc_sdp.SessionDescription:
    """Parse an offer; refuse one that is not usable or sends media it may not send.

    Monitors are receive-only: an offer of theirs with a sending m-line (sendrecv or
    sendonly) is refused.
    """
    if not isinstance(value, str) or not value.strip():
        raise SdpError("bad_sdp", "The offer has no SDP.")
    if not value.lstrip().startswith("v=0"):
        raise SdpError("bad_sdp", "The SDP does not parse (it must start with v=0).")
    try:
        description = aiortc_sdp.SessionDescription.parse(value)
    except Exception as exc:
        raise SdpError("bad_sdp", f"The SDP does not parse: {exc}") from None
    media = [m for m in description.media if m.kind in ("audio", "video")]
    if not media:
        raise SdpError("bad_sdp", "The SDP offers no audio or video.")
    if len(description.media) > MAX_MEDIA_SECTIONS:
        raise SdpError("bad_sdp", "The SDP has too many media sections.")
    for section in media:
        if not section.rtp.codecs:
            raise SdpError("bad_sdp", f"The {section.kind} section lists no codecs.")
        ice = section.ice
        ufrag = getattr(ice, "usernameFragment", None) if ice else None
        if not ufrag or section.dtls is None or not section.dtls.fingerprints:
            raise SdpError("bad_sdp", "The SDP lacks ICE credentials or a DTLS fingerprint.")
        if monitor and section.direction in (None, "sendrecv", "sendonly"):
            raise SdpError(
                "send_not_allowed", "Monitors receive only: the offer must not send media."
            )
    if monitor:
        kinds = [m.kind for m in media]
        if kinds.count("audio") > 2 or kinds.count("video") > 2:
            raise SdpError("bad_sdp", "A monitor offers two audio and two video transceivers.")
    return description
