"""Django's HTTP side under ASGI with one thread hop per request.

Every view and middleware of this project is synchronous. Django's own ``ASGIHandler``
runs such a stack in async mode: a new thread per request (``ThreadSensitiveContext``),
each synchronous middleware and the view adapted separately, the request signals sent
from the event loop. Measured in-process back to back (``bench/request_cost.py``,
docs/reliability.md) that costs 1.8–2.1 ms of CPU more per request than this handler on
the booking page: about a quarter of the page's whole cost.

``HTTPHandler`` keeps the ASGI side (the body read on the event loop, the response sent
back through the server) and runs everything else — ``request_started``, the
middleware chain in its synchronous mode, the view, ``request_finished`` — in one call
on a fixed pool of ``WEB_THREADS`` threads. ``async_to_sync`` inside a view (channel
layer messages, the health check) still reaches the server's event loop, as
``sync_to_async`` keeps the loop in a thread-local for it. A full pool queues requests
in arrival order; a database connection is taken from the pool only while a request
runs in a thread and given back at its end (``request_finished``).

Streaming responses stream: a synchronous iterator (the audit CSV, a photo) is read in
the thread that ran the view, in batches of up to ``chunk_size`` (64 KB) handed to the
event loop one at a time as it sends them, so at most one batch is in memory and the
iterator's database queries run on the request's own connection; that thread stays
with the request until the last batch, then closes the response there. (Django's own
handler reads such an iterator whole before sending it.)

This is the one module of the project built on Django's handler internals. Each one it
uses is listed in ``DJANGO_INTERNALS``; tests/test_asgi_http.py pins their names and
signatures, so a Django upgrade that changes one fails there, naming it.
"""

from __future__ import annotations

import asyncio
import os
import queue
from collections.abc import AsyncIterator, Iterator
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

# Django internals this module relies on ("where": what it is used for). Pinned, with
# their signatures, by tests/test_asgi_http.py::test_every_django_internal_used_is_pinned.
DJANGO_INTERNALS = {
    "BaseHandler.__init__": "set up without ASGIHandler.__init__'s async middleware chain",
    "BaseHandler.load_middleware": "the middleware chain in synchronous mode",
    "BaseHandler.get_response": "the synchronous request → response path",
    "ASGIHandler.read_body": "the body, read on the event loop into a spooled file",
    "ASGIHandler.create_request": "the ASGIRequest, or the 400/413 response instead",
    "ASGIHandler.send_response": "headers, cookies and body out over ASGI",
    "ASGIHandler.chunk_size": "FileResponse block size and stream batch size",
    "django.core.handlers.asgi.get_script_prefix": "the script prefix from the scope",
    "HttpResponseBase._handler_class": "sender of request_finished in response.close()",
}

# A thread waits this long for the event loop to ask for a stream's next batch before
# it gives the stream up (a server that dropped the request without closing it).
STREAM_ASK_TIMEOUT_SECONDS = 600


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
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[tuple[HttpResponseBase, _ThreadStream | None, bool]]
        ready = loop.create_future()
        # The thread hands the response over through `ready`, and for a synchronous
        # stream keeps running (feeding it) until the stream is done.
        work = asyncio.ensure_future(self._in_thread(self._respond)(scope, body_file, ready))
        stream: _ThreadStream | None = None
        try:
            await asyncio.wait([ready, work], return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                work.result()  # the thread failed before it had a response: raise that
            response, stream, closed = ready.result()
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client went away while the response was being sent
            finally:
                if stream is not None:
                    stream.stop()  # the thread stops reading and closes the response
                await work
                if not closed and stream is None:  # a view's own asynchronous iterator
                    await self._in_thread(response.close)()
        finally:
            body_file.close()

    def _respond(
        self,
        scope: dict[str, Any],
        body_file: Any,
        ready: asyncio.Future[tuple[HttpResponseBase, _ThreadStream | None, bool]],
    ) -> None:
        """The whole request in this thread; the response goes to the event loop through
        ``ready`` with its stream (if this thread feeds one) and whether it is closed."""
        loop = ready.get_loop()
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
                _hand_over(loop, ready, (response, None, False))
                return
            stream = _ThreadStream(response.streaming_content, loop, self.chunk_size)  # type: ignore[arg-type]
            response.streaming_content = stream.batches()
            _hand_over(loop, ready, (response, stream, False))
            try:
                stream.feed()
            finally:
                # The connection goes back and request_finished is sent where the view
                # ran, also when the content failed or the client went away.
                response.close()
            return
        # The content is in memory: give the database connection back and send
        # request_finished before the bytes go out.
        response.close()
        _hand_over(loop, ready, (response, None, True))


def _hand_over(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any], value: Any) -> None:
    def resolve() -> None:
        if not future.done():
            future.set_result(value)

    loop.call_soon_threadsafe(resolve)


class _ThreadStream:
    """A synchronous iterator read in one thread, batch by batch as the loop asks.

    The loop side (``batches``) puts a future in ``asks`` for each batch it wants; the
    thread (``feed``) answers each with the next batch, ``None`` at the end, or the
    error the iterator raised. ``stop`` (loop side) ends the thread's wait early.
    """

    def __init__(
        self, parts: Iterator[bytes], loop: asyncio.AbstractEventLoop, batch_bytes: int
    ) -> None:
        self.parts = parts
        self.loop = loop
        self.batch_bytes = batch_bytes
        self.asks: queue.SimpleQueue[asyncio.Future[bytes | None] | None] = queue.SimpleQueue()

    async def batches(self) -> AsyncIterator[bytes]:
        try:
            while True:
                future: asyncio.Future[bytes | None] = self.loop.create_future()
                self.asks.put(future)
                batch = await future
                if batch is None:
                    return
                yield batch
        finally:
            self.stop()

    def stop(self) -> None:
        self.asks.put(None)

    def _next_batch(self) -> bytes | None:
        batch: list[bytes] = []
        size = 0
        for part in self.parts:
            batch.append(part)
            size += len(part)
            if size >= self.batch_bytes:
                break
        return b"".join(batch) if batch else None

    def feed(self) -> None:
        """In the thread that ran the view: answer each ask until the end or a stop."""
        while True:
            try:
                future = self.asks.get(timeout=STREAM_ASK_TIMEOUT_SECONDS)
            except queue.Empty:
                return
            if future is None:
                return
            try:
                batch = self._next_batch()
            except BaseException as error:
                self.loop.call_soon_threadsafe(_fail, future, error)
                return
            self.loop.call_soon_threadsafe(_answer, future, batch)
            if batch is None:
                return


def _answer(future: asyncio.Future[bytes | None], batch: bytes | None) -> None:
    if not future.done():
        future.set_result(batch)


def _fail(future: asyncio.Future[bytes | None], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
