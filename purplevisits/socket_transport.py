"""Daphne's WebSocket protocol with a refusal, not a dropped socket, for a huge message.

Daphne (through autobahn) limits a message to ``--websocket-max-message-size`` (1 MiB
by default) and a frame to ``--websocket-max-frame-size`` (1 MiB). Past either, autobahn
"fails the connection" by dropping TCP: the browser sees 1006, the consumer's
``disconnect`` runs and the call counts a participant drop (issue 13, defect 4), while
the app's own limit (64 KB for calls, 4 KB for the dashboard) never gets the chance to
answer. Below daphne's limit the consumer refuses the message itself (``too_large``).

With :func:`install`, a message over daphne's limit is read to its end and thrown away
as it arrives (nothing past the limit is buffered), the client gets the same ``error``
message a consumer would send (``too_large``) and the socket stays open. Only
uncompressed messages are handled so: daphne does not offer permessage-deflate, and a
compressed one keeps autobahn's own handling.

:func:`install` sets the protocol class of daphne's WebSocket factory (a Twisted
factory's ``protocol`` attribute is how its protocol is chosen); ``purplevisits.asgi``
calls it, so every daphne that serves the project (the CLI, ``runserver``, the tests'
``DaphneProcess``) uses it. ``tests/security/test_socket_input.py`` checks it against a
real daphne.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from django.utils.translation import gettext as _

from purplevisits.socket_json import Refusal

logger = logging.getLogger(__name__)


def too_large_refusal() -> Refusal:
    return Refusal("too_large", _("That message was too large to read: it was not sent on."))


class BoundedWebSocketProtocol(WebSocketProtocol):
    """Daphne's protocol; a message over the size limit is discarded and refused.

    The method names are autobahn's hooks (camelCase), called as a message arrives.
    """

    discarding = False

    def onMessageBegin(self, isBinary: bool) -> None:
        self.discarding = False
        super().onMessageBegin(isBinary)

    def _max_message_size_exceeded(self, msg_size: int, max_msg_size: int, reason: str) -> None:
        if getattr(self, "_isMessageCompressed", False):
            super()._max_message_size_exceeded(msg_size, max_msg_size, reason)
            return
        if not self.discarding:
            logger.info("discarding a websocket message over the limit: %s", reason)
        self.discarding = True

    def onMessageFrameData(self, payload: bytes) -> None:
        if not self.discarding:
            super().onMessageFrameData(payload)

    def onMessageFrame(self, payload: Any) -> None:
        if not self.discarding:
            super().onMessageFrame(payload)

    def onMessageEnd(self) -> None:
        if not self.discarding:
            super().onMessageEnd()
            return
        self.discarding = False
        self.message_data = None
        if self.state == self.STATE_OPEN and not self.muted:
            reply = json.dumps(too_large_refusal().as_error())
            self.sendMessage(reply.encode("utf-8"), isBinary=False)


def install() -> None:
    """Make daphne's WebSocket factory build :class:`BoundedWebSocketProtocol`."""
    WebSocketFactory.protocol = BoundedWebSocketProtocol
