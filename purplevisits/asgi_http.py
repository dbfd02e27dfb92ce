"""Django's HTTP side under ASGI with one thread hop per request.

Every view and middleware of this project is synchronous. Django's own ``ASGIHandler``
runs such a stack in async mode: a new thread per request (``ThreadSensitiveContext``),
each synchronous middleware and the view adapted separately, the request signals sent
from the event loop. Measured in-process on the booking page that costs 2–3 ms of CPU
per request more than the same stack under WSGI (``bench/request_cost.py``), a quarter
of the page's whole cost.

``HTTPHandler`` keeps the ASGI side (the body read on the event loop, the response sent
back through the server) and runs everything else — ``request_started``, the
middleware chain in its synchronous mode, the view, ``request_finished`` — in one call
on a fixed pool of ``WEB_THREADS`` threads. ``async_to_sync`` inside a view (channel
layer messages, the health check) still reaches the server's event loop, as
``sync_to_async`` keeps the loop in a thread-local for it. A full pool queues requests
in arrival order; a database connection is taken from the pool only while a request
runs in a thread and given back at its end (``request_finished``), before the response
is sent. Streaming responses with a synchronous iterator are read whole in the same
thread (Django's handler reads them whole too, in its one shared thread).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import (
    FileResponse,
    HttpResponseBadRequest,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.urls import set_script_prefix


class HTTPHandler(ASGIHandler):
    """``ASGIHandler`` with the synchronous stack run once per request in a thread."""

    def __init__(self, threads: int | None = None) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.threads = threads or settings.WEB_THREADS
        self._executor: ThreadPoolExecutor | None = None
        self._executor_pid = 0

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The thread pool of this process: a process forked after a request (a test
        server, a pre-forking server) would otherwise inherit a pool whose threads it
        does not have, and wait for them for ever."""
        if self._executor is None or self._executor_pid != os.getpid():
            self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="http")
            self._executor_pid = os.getpid()
        return self._executor

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        await self.handle(scope, receive, send)

    def _in_thread(self, function: Any) -> Any:
        return sync_to_async(function, thread_sensitive=False, executor=self.executor)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response, closed = await self._in_thread(self._respond)(scope, body_file)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client went away while the response was being sent
            finally:
                if not closed:  # a view's own asynchronous iterator, read while sent
                    await self._in_thread(response.close)()
        finally:
            body_file.close()

    def _respond(self, scope: dict[str, Any], body_file: Any) -> tuple[HttpResponseBase, bool]:
        """The whole request in this thread: the response, and whether it is closed
        (every response but one streaming from an asynchronous iterator)."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            # create_request returns a request or the error response to send instead.
            response: HttpResponseBase = error_response or HttpResponseBadRequest()
        else:
            response = self.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if isinstance(response, StreamingHttpResponse):
            if response.is_async:
                return response, False
            # A synchronous iterator (CSV export, image) is read here, where the view
            # ran, as Django's handler would read it whole: not in Django's one shared
            # thread, which the WebSocket consumers' database calls also use.
            try:
                parts = list(response.streaming_content)  # type: ignore[arg-type]
            except BaseException:
                response.close()  # the connection goes back even when the content fails
                raise
            response.streaming_content = _replay(parts)
        # The content is in memory: give the database connection back and send
        # request_finished before the bytes go out.
        response.close()
        return response, True


async def _replay(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
