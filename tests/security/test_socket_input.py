"""Socket messages are bounded before parsing, and bad paths are refused cleanly
(issue 12 findings 6 and 7; docs/security.md "Socket messages")."""

from __future__ import annotations

import contextlib
import json

import pytest
from asgiref.sync import sync_to_async
from hypothesis import given, settings
from hypothesis import strategies as st

from calls import consumers as call_consumers
from calls.models import Call, CallConnection, CallStatus
from purplevisits.socket_json import MAX_DEPTH, Refusal, json_depth, socket_message
from tests.security.sockets import browser_socket, closed_with, next_of
from tests.security.world import World, build_world

# --- the module: depth and size before parsing ------------------------------------------


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:'),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\a'), children, max_size=3)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_scan_measures_the_depth_of_any_json(value: object) -> None:
    # Brackets, quotes and backslashes inside strings are not nesting.
    assert json_depth(json.dumps(value)) == _depth(value)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet='[]{}"\\,:1a ', max_size=3000))
def test_text_the_scan_passes_never_exhausts_the_parser(text: str) -> None:
    """Valid or not: if the scan says shallow, the parser never hits RecursionError."""
    result = socket_message(text, max_bytes=64 * 1024, max_depth=MAX_DEPTH)
    if isinstance(result, Refusal) and result.code == "too_deep":
        assert json_depth(text) > MAX_DEPTH
        return
    with contextlib.suppress(ValueError):  # not JSON: refused as bad_json, fine
        json.loads(text)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[" * 1500, "too_deep"),  # the tester's 3 KB case (and invalid JSON)
        ("[" * 1500 + "]" * 1500, "too_deep"),  # valid JSON, just deep
        ('{"a":' * 1500 + "1" + "}" * 1500, "too_deep"),
        ('{"type": "x", "a": ' + "[" * (MAX_DEPTH) + "]" * MAX_DEPTH + "}", "too_deep"),
        ("x" * (64 * 1024 + 1), "too_large"),
        ("é" * (32 * 1024 + 1), "too_large"),  # 64 KB + 2 bytes of UTF-8
        ("{not json", "bad_json"),
        ('{"type": NaN}', "bad_json"),
        ('{"type": "x", "n": Infinity}', "bad_json"),
        ("1" * 5000, "bad_json"),  # past Python's int-from-text digit limit
        ("[1, 2]", "bad_message"),
        ('{"type": 5}', "bad_message"),
    ],
)
def test_refusals_have_a_code_and_plain_words(text: str, code: str) -> None:
    result = socket_message(text, max_bytes=64 * 1024)
    assert isinstance(result, Refusal)
    assert result.code == code
    assert result.message and "Error" not in result.message


def test_what_is_allowed_is_parsed() -> None:
    nested = '{"type": "x", "a": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"
    assert socket_message(nested, max_bytes=4096) == json.loads(nested)
    brackets_in_text = json.dumps({"type": "message", "text": "[" * 5000})
    assert socket_message(brackets_in_text, max_bytes=64 * 1024) == json.loads(brackets_in_text)
    assert isinstance(socket_message(None, max_bytes=10), Refusal)  # a binary frame


# --- the consumers: one error, the socket stays open ------------------------------------


@pytest.fixture
def world(transactional_db) -> World:  # type: ignore[no-untyped-def]
    return build_world()


DEEP = ["[" * 1500, "[" * 1500 + "]" * 1500, '{"type":' * 1500, "[" * 100_000]


@pytest.mark.parametrize("frame", DEEP, ids=["open", "valid", "objects", "100k"])
async def test_deep_json_gets_one_error_and_the_call_socket_stays(world: World, frame) -> None:  # type: ignore[no-untyped-def]
    call = world.objects["call_a"]
    family = await browser_socket(f"/ws/calls/{call.pk}/", world.users["family_a"])  # type: ignore[attr-defined]
    connected, _ = await family.connect(timeout=10)
    assert connected
    await next_of(family, "state")
    await family.send_to(text_data=frame)
    error = await next_of(family, "error")
    assert error["code"] == ("too_large" if len(frame) > 64 * 1024 else "too_deep")
    assert error["message"]
    # One error only, and the socket still answers: an unknown type gets its own error.
    await family.send_json_to({"type": "nope"})
    assert (await next_of(family, "error"))["code"] == "unknown_type"
    after = await sync_to_async(Call.objects.get)(pk=call.pk)  # type: ignore[attr-defined]
    assert after.status != CallStatus.ENDED and after.end_reason == ""
    dropped = await sync_to_async(
        CallConnection.objects.filter(call_id=call.pk, left_reason="dropped").exists  # type: ignore[attr-defined]
    )()
    assert not dropped
    await family.disconnect()


# The dashboard reads at most 4 KB: 1000 levels in 3 KB.
DASHBOARD_DEEP = ["[" * 1500, "[" * 1500 + "]" * 1500, '{"a":[' * 500]


@pytest.mark.parametrize("frame", DASHBOARD_DEEP, ids=["open", "valid", "objects"])
async def test_deep_json_gets_one_error_and_the_dashboard_stays(world: World, frame) -> None:  # type: ignore[no-untyped-def]
    code = world.objects["x"].code  # type: ignore[attr-defined]
    officer = await browser_socket(f"/ws/staff/{code}/dashboard/", world.users["officer_x"])
    connected, _ = await officer.connect(timeout=10)
    assert connected
    await next_of(officer, "snapshot")
    await officer.send_to(text_data=frame)
    error = await next_of(officer, "error")
    assert error["code"] == "too_deep" and error["message"]
    await officer.send_json_to({"type": "heartbeat"})
    assert (await next_of(officer, "heartbeat"))["type"] == "heartbeat"
    await officer.disconnect()


async def test_deep_json_still_counts_against_the_rate_limit(world: World) -> None:
    """A flood of deep frames: errors until the bucket is empty, then 4429, as for any
    other message (the token is taken before the frame is read)."""
    call = world.objects["call_a"]
    family = await browser_socket(f"/ws/calls/{call.pk}/", world.users["family_a"])  # type: ignore[attr-defined]
    assert (await family.connect(timeout=10))[0]
    await next_of(family, "state")
    sent = call_consumers.RATE_BURST + call_consumers.RATE_STRIKES * 20
    for _ in range(sent):
        await family.send_to(text_data="[" * 1500)
    codes = []
    while True:
        output = await family.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            assert output["code"] == call_consumers.CLOSE_FLOOD
            break
        message = json.loads(output["text"])
        if message["type"] == "error":
            codes.append(message["code"])
    assert codes[0] == "too_deep"
    assert set(codes) == {"too_deep", "rate_limited"}
    assert codes.count("rate_limited") == call_consumers.RATE_STRIKES


# --- bad paths: a clean refusal ----------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/ws/calls/not-a-uuid/", "/ws/calls/", "/ws/nothing/", "/", "/ws/staff/a b/dashboard/"]
)
async def test_unknown_paths_close_with_4404(world: World, path: str) -> None:
    """Before: channels raised "No route found" (daphne: HTTP 500 and a traceback)."""
    communicator = await browser_socket(path, world.users["family_a"])
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    assert await closed_with(communicator) == 4404
