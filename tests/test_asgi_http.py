"""purplevisits/asgi_http.py: the HTTP side under ASGI, one thread hop per request."""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core import signals
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.test import override_settings
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from purplevisits.asgi_http import HTTPHandler

seen: dict[str, Any] = {}


def where(request: HttpRequest) -> HttpResponse:
    seen["view"] = threading.current_thread().name
    return JsonResponse({"thread": seen["view"], "query": request.GET.get("q", "")})


@csrf_exempt
def echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.POST.get("text", ""), content_type="text/plain")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def parts():  # type: ignore[no-untyped-def]
        seen["stream"] = threading.current_thread().name
        for n in range(3):
            yield f"part {n}\n"

    return StreamingHttpResponse(parts(), content_type="text/plain")


# Set by the test once the first batch of /slow-stream/ has reached the client.
first_batch_received = threading.Event()


def slow_stream(request: HttpRequest) -> StreamingHttpResponse:
    """A first batch, then the rest only once the client has the first: a handler that
    read the content whole would wait here (10 s ceiling) and send "not streamed"."""

    def parts():  # type: ignore[no-untyped-def]
        yield b"x" * 70_000  # more than one 64 KB batch
        if first_batch_received.wait(timeout=10):
            yield b"streamed"
        else:
            yield b"not streamed"

    return StreamingHttpResponse(parts(), content_type="application/octet-stream")


def long_stream(request: HttpRequest) -> StreamingHttpResponse:
    def parts():  # type: ignore[no-untyped-def]
        seen["long"] = threading.current_thread().name
        seen["long_parts"] = 0
        try:
            for _ in range(200):  # 14 MB: a handler reading it whole reads all 200
                seen["long_parts"] += 1
                yield b"y" * 70_000
        finally:
            seen["long_closed"] = threading.current_thread().name

    return StreamingHttpResponse(parts(), content_type="application/octet-stream")


def broken_stream(request: HttpRequest) -> StreamingHttpResponse:
    def parts():  # type: ignore[no-untyped-def]
        yield "a first part\n"
        raise RuntimeError("the export failed half-way")

    return StreamingHttpResponse(parts(), content_type="text/plain")


def loop_of_async_to_sync(request: HttpRequest) -> HttpResponse:
    async def running_loop() -> int:
        return id(asyncio.get_running_loop())

    return HttpResponse(str(async_to_sync(running_loop)()))


barrier = threading.Barrier(2, timeout=2)


def meet(request: HttpRequest) -> HttpResponse:
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        return HttpResponse("alone", status=503)
    return HttpResponse("met")


def query(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return HttpResponse(str(cursor.fetchone()[0]))


def fails(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug in a view")


urlpatterns = [
    path("where/", where),
    path("echo/", echo),
    path("stream/", stream),
    path("broken-stream/", broken_stream),
    path("slow-stream/", slow_stream),
    path("long-stream/", long_stream),
    path("loop/", loop_of_async_to_sync),
    path("meet/", meet),
    path("query/", query),
    path("fails/", fails),
    path("", include("purplevisits.urls")),  # the error pages link to the home page
]

pytestmark = pytest.mark.urls(__name__)


def scope(method: str, url: str, **extra: Any) -> dict[str, Any]:
    path_, _, query_string = url.partition("?")
    headers = [(b"host", b"testserver"), *extra.pop("headers", [])]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path_,
        "raw_path": path_.encode(),
        "query_string": query_string.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        **extra,
    }


async def call(
    handler: HTTPHandler, method: str, url: str, body: bytes = b"", **extra: Any
) -> tuple[int, dict[bytes, bytes], bytes]:
    communicator = ApplicationCommunicator(handler, scope(method, url, **extra))
    await communicator.send_input({"type": "http.request", "body": body})
    start = await communicator.receive_output(5)
    assert start["type"] == "http.response.start"
    content = b""
    while True:
        message = await communicator.receive_output(5)
        content += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(5)
    return start["status"], dict(start["headers"]), content


@pytest.fixture
def handler():  # type: ignore[no-untyped-def]
    handler = HTTPHandler(threads=1)
    yield handler
    handler.executor.shutdown(wait=True)


@pytest.fixture
def signal_threads():  # type: ignore[no-untyped-def]
    threads: dict[str, str] = {}

    def started(**kwargs: object) -> None:
        threads["started"] = threading.current_thread().name

    def finished(**kwargs: object) -> None:
        threads["finished"] = threading.current_thread().name

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    yield threads
    signals.request_started.disconnect(started)
    signals.request_finished.disconnect(finished)


def test_the_whole_request_runs_in_one_pool_thread(handler, signal_threads) -> None:  # type: ignore[no-untyped-def]
    status, headers, content = async_to_sync(call)(handler, "GET", "/where/?q=caf%C3%A9")
    assert status == 200
    assert headers[b"Content-Type"] == b"application/json"
    assert json.loads(content) == {"thread": seen["view"], "query": "café"}
    assert seen["view"].startswith("http")
    assert seen["view"] != threading.current_thread().name
    # The database connection is opened and given back where the view ran.
    assert signal_threads == {"started": seen["view"], "finished": seen["view"]}


def test_a_posted_body_reaches_the_view(handler) -> None:  # type: ignore[no-untyped-def]
    status, _, content = async_to_sync(call)(
        handler,
        "POST",
        "/echo/",
        body=b"text=hello+there",
        headers=[(b"content-type", b"application/x-www-form-urlencoded")],
    )
    assert (status, content) == (200, b"hello there")


def test_a_stream_is_read_where_the_view_ran_then_closed(handler, signal_threads) -> None:  # type: ignore[no-untyped-def]
    status, _, content = async_to_sync(call)(handler, "GET", "/stream/")
    assert (status, content) == (200, b"part 0\npart 1\npart 2\n")
    # Read where the view ran (its queries on the request's connection), not in
    # Django's shared thread; closed there too.
    assert signal_threads == {"started": seen["stream"], "finished": seen["stream"]}


def test_a_streaming_response_streams(handler) -> None:  # type: ignore[no-untyped-def]
    """The audit CSV must not go into memory whole: the first batch is sent before the
    iterator is asked for the rest."""
    first_batch_received.clear()

    async def request() -> bytes:
        communicator = ApplicationCommunicator(handler, scope("GET", "/slow-stream/"))
        await communicator.send_input({"type": "http.request", "body": b""})
        assert (await communicator.receive_output(15))["type"] == "http.response.start"
        first = await communicator.receive_output(15)
        assert first["body"] and first["more_body"]
        first_batch_received.set()
        content = first["body"]
        while True:
            message = await communicator.receive_output(15)
            content += message.get("body", b"")
            if not message.get("more_body"):
                break
        await communicator.wait(15)
        return content

    content = async_to_sync(request)()
    assert content.endswith(b"streamed") and not content.endswith(b"not streamed")
    assert len(content) == 70_000 + len(b"streamed")


def test_a_client_gone_mid_stream_stops_the_reading_and_closes_it(  # type: ignore[no-untyped-def]
    handler, signal_threads
) -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if len(sent) == 3:  # the start and two batches, then the client is gone
            raise asyncio.CancelledError

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def request() -> None:
        await asyncio.wait_for(handler(scope("GET", "/long-stream/"), receive, send), 15)

    async_to_sync(request)()
    assert len(sent) == 3
    # Reading stopped (a batch or so ahead at most), and the iterator was closed and
    # request_finished sent in the view's thread.
    assert seen["long_parts"] <= 4
    assert seen["long_closed"] == seen["long"] == signal_threads["finished"]
    assert signal_threads["started"] == seen["long"]


def test_a_stream_that_fails_half_way_still_finishes_the_request(handler, signal_threads) -> None:  # type: ignore[no-untyped-def]
    async def request() -> None:
        communicator = ApplicationCommunicator(handler, scope("GET", "/broken-stream/"))
        await communicator.send_input({"type": "http.request", "body": b""})
        await communicator.wait(5)

    with pytest.raises(RuntimeError, match="half-way"):
        async_to_sync(request)()
    # request_finished ran (the database connection went back) in the request's thread.
    assert signal_threads["finished"] == signal_threads["started"]


def test_async_to_sync_in_a_view_runs_on_the_servers_event_loop(handler) -> None:  # type: ignore[no-untyped-def]
    """Channel-layer messages sent from views must reach the server's own loop (the
    in-memory layer's queues belong to it)."""

    async def request_and_loop() -> tuple[bytes, int]:
        _, _, content = await call(handler, "GET", "/loop/")
        return content, id(asyncio.get_running_loop())

    content, server_loop = async_to_sync(request_and_loop)()
    assert int(content) == server_loop


@pytest.mark.parametrize("threads, answers", [(2, [b"met", b"met"]), (1, [b"alone", b"alone"])])
def test_requests_run_side_by_side_up_to_the_thread_count(threads, answers) -> None:  # type: ignore[no-untyped-def]
    handler = HTTPHandler(threads=threads)
    barrier.reset()

    async def two_at_once() -> list[bytes]:
        results = await asyncio.gather(
            call(handler, "GET", "/meet/"), call(handler, "GET", "/meet/")
        )
        return [content for _, _, content in results]

    try:
        assert async_to_sync(two_at_once)() == answers
    finally:
        handler.executor.shutdown(wait=True)


def test_the_database_connection_is_given_back_after_each_request(  # type: ignore[no-untyped-def]
    handler, transactional_db
) -> None:
    status, _, content = async_to_sync(call)(handler, "GET", "/query/")
    assert (status, content) == (200, b"1")
    # The pool's only thread has no open connection left.
    assert handler.executor.submit(lambda: connection.connection).result() is None


@override_settings(DEBUG=False)
def test_an_error_in_a_view_is_a_500_page_and_the_handler_goes_on(handler) -> None:  # type: ignore[no-untyped-def]
    status, _, _ = async_to_sync(call)(handler, "GET", "/fails/")
    assert status == 500
    assert async_to_sync(call)(handler, "GET", "/where/")[0] == 200


def test_a_client_gone_before_its_body_gets_nothing(handler) -> None:  # type: ignore[no-untyped-def]
    async def disconnect_early() -> bool:
        communicator = ApplicationCommunicator(handler, scope("POST", "/echo/"))
        await communicator.send_input({"type": "http.disconnect"})
        await communicator.wait(5)
        return await communicator.receive_nothing(0.1)

    assert async_to_sync(disconnect_early)() is True


def test_only_http_is_handled(handler) -> None:  # type: ignore[no-untyped-def]
    async def websocket() -> None:
        await handler({"type": "websocket"}, None, None)

    with pytest.raises(ValueError, match="websocket"):
        async_to_sync(websocket)()


def test_the_service_serves_http_with_it() -> None:
    from purplevisits.asgi import application, django_asgi_app

    inner = django_asgi_app
    while hasattr(inner, "application"):  # the static files wrapper, the body limit
        inner = inner.application
    assert isinstance(inner, HTTPHandler)
    assert application.application_mapping["http"] is django_asgi_app


def test_start_up_objects_are_frozen_out_of_the_garbage_collector() -> None:
    """Full collections would walk every start-up object again and again (73–170 ms
    pauses per collection under the booking rush)."""
    import gc

    import purplevisits.asgi  # noqa: F401

    assert gc.get_freeze_count() > 10_000


def test_a_process_forked_after_requests_gets_its_own_threads(handler) -> None:  # type: ignore[no-untyped-def]
    """The pool's threads do not survive a fork: the child must not wait on them."""
    import os
    import signal

    assert async_to_sync(call)(handler, "GET", "/where/")[0] == 200  # the pool has a thread
    pid = os.fork()
    if pid == 0:  # the child: answer within 10 s or be killed by the alarm
        signal.alarm(10)
        status = 0
        try:
            status = async_to_sync(call)(handler, "GET", "/where/")[0]
        finally:
            os._exit(0 if status == 200 else 1)
    _, exit_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(exit_status) == 0


# Each Django internal purplevisits/asgi_http.py uses, with what it must look like.
PINNED_SIGNATURES = {
    "BaseHandler.load_middleware": "(self, is_async=False)",
    "BaseHandler.get_response": "(self, request)",
    "ASGIHandler.read_body": "(self, receive)",
    "ASGIHandler.create_request": "(self, scope, body_file)",
    "ASGIHandler.send_response": "(self, response, send)",
    "django.core.handlers.asgi.get_script_prefix": "(scope)",
}


def test_every_django_internal_used_is_pinned() -> None:
    """A Django upgrade that renames, re-signs or reshapes one of the handler internals
    HTTPHandler is built on fails here, naming it."""
    from django.core.handlers import asgi, base
    from django.http import HttpResponse
    from django.http.response import HttpResponseBase

    from purplevisits import asgi_http

    owners = {"BaseHandler": base.BaseHandler, "ASGIHandler": asgi.ASGIHandler}
    for name, expected in PINNED_SIGNATURES.items():
        owner, _, attribute = name.rpartition(".")
        target = getattr(owners.get(owner, asgi), attribute, None)
        assert target is not None, f"Django no longer has {name}"
        assert str(inspect.signature(target)) == expected, f"{name} changed its signature"
    for name in ("ASGIHandler.read_body", "ASGIHandler.send_response"):
        attribute = name.rpartition(".")[2]
        assert inspect.iscoroutinefunction(getattr(asgi.ASGIHandler, attribute)), name
    assert not inspect.iscoroutinefunction(asgi.ASGIHandler.create_request)
    # create_request answers (request, None) or (None, response).
    assert "return self.request_class(scope, body_file), None" in inspect.getsource(
        asgi.ASGIHandler.create_request
    )
    # HTTPHandler skips ASGIHandler.__init__: it must do nothing more than this.
    assert "__init__" not in vars(base.BaseHandler), "BaseHandler.__init__ now exists"
    init_body = textwrap.dedent(inspect.getsource(asgi.ASGIHandler.__init__)).splitlines()[1:]
    assert [line.strip() for line in init_body if line.strip()] == [
        "super().__init__()",
        "self.load_middleware(is_async=True)",
    ], "ASGIHandler.__init__ changed"
    assert asgi.ASGIHandler.chunk_size == 2**16, "ASGIHandler.chunk_size changed"
    # request_finished's sender comes from the response's _handler_class.
    assert HttpResponse()._handler_class is None, "HttpResponseBase._handler_class is gone"
    assert "self._handler_class" in inspect.getsource(HttpResponseBase.close)
    # The list in the module is the list pinned here.
    assert set(asgi_http.DJANGO_INTERNALS) == set(PINNED_SIGNATURES) | {
        "BaseHandler.__init__",
        "ASGIHandler.chunk_size",
        "HttpResponseBase._handler_class",
    }


def test_the_module_uses_no_unpinned_internal() -> None:
    """Every handler attribute HTTPHandler touches on ``self``, and every private name
    it touches anywhere, is in DJANGO_INTERNALS (a new internal must be pinned)."""
    from django.core.handlers import asgi

    from purplevisits import asgi_http

    pinned = {name.rpartition(".")[2] for name in asgi_http.DJANGO_INTERNALS}
    tree = ast.parse(Path(asgi_http.__file__).read_text())
    # The module's own names: its functions and methods, and what it assigns to self.
    functions = ast.FunctionDef | ast.AsyncFunctionDef
    own = {node.name for node in ast.walk(tree) if isinstance(node, functions)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Attribute) and getattr(target.value, "id", "") == "self":
                    own.add(target.attr)
    own -= pinned  # assigning a Django attribute (block_size aside) still uses it
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            name = node.attr
            if name.startswith("__") or name in own:
                continue
            if node.value.id == "self" and hasattr(asgi.ASGIHandler, name):
                assert name in pinned, f"HTTPHandler uses self.{name}: pin it"
            if name.startswith("_"):
                assert name in pinned, f"asgi_http uses {node.value.id}.{name}: pin it"
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "django.core.handlers"
        ):
            for alias in node.names:
                assert alias.name in pinned | {"ASGIHandler", "base"}, alias.name
