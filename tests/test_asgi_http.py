"""purplevisits/asgi_http.py: the HTTP side under ASGI, one thread hop per request."""

from __future__ import annotations

import asyncio
import json
import threading
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


def test_a_streaming_response_is_sent_whole_then_closed(handler, signal_threads) -> None:  # type: ignore[no-untyped-def]
    status, _, content = async_to_sync(call)(handler, "GET", "/stream/")
    assert (status, content) == (200, b"part 0\npart 1\npart 2\n")
    # Read where the view ran, not in Django's shared thread.
    assert signal_threads == {"started": seen["stream"], "finished": seen["stream"]}


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
