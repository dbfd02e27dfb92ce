"""Short hypothesis runs against the upload forms, the booking post and the two socket
consumers (bench/fuzz.py runs the same generators for >= 10,000 cases each)."""

from __future__ import annotations

import asyncio

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calls import services as call_services
from calls.models import Call, CallStatus
from identity.models import Dependant, VerificationStatus
from tests import factories
from tests.security import fuzzing
from tests.security.sockets import session_cookie
from tests.security.world import World, build_world

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def world(db, settings, tmp_path) -> World:  # type: ignore[no-untyped-def]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path, "base_url": None},
        },
    }
    built = build_world()
    newcomer = factories.VisitorProfileFactory(
        verification_status=VerificationStatus.NOT_STARTED, biometric_consent=True
    )
    built.users["newcomer"] = newcomer.user
    return built


def _client(user: object) -> Client:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return client


def _photos(dependant: Dependant):  # type: ignore[no-untyped-def]
    return lambda: Dependant.objects.get(pk=dependant.pk).photo.name


def test_the_invariant_catches_a_store_on_refusal(world: World) -> None:
    """The check itself can fail: a refused post that stored something is reported."""
    tally = fuzzing.Tally()

    class StoringClient:
        def post(self, path, data):  # type: ignore[no-untyped-def]
            factories.DependantFactory()

            class Refused:
                status_code = 400

            return Refused()

    fuzzing.post_and_check(StoringClient(), "/x/", {}, tally, lambda: None)
    assert tally.failures == ["/x/: refused (400) but stored"]


@FUZZ
@given(id_photo=fuzzing.upload, selfie=fuzzing.upload)
def test_fuzz_identity_upload(world: World, id_photo, selfie) -> None:  # type: ignore[no-untyped-def]
    tally = fuzzing.Tally()
    client = _client(world.users["newcomer"])
    data = {"id_photo": fuzzing.as_file(id_photo), "selfie": fuzzing.as_file(selfie)}
    fuzzing.post_and_check(client, "/me/identity/", data, tally, lambda: None)
    assert tally.failures == []
    assert tally.cases == 1


@FUZZ
@given(
    photo=fuzzing.upload,
    first_name=fuzzing.form_text,
    last_name=fuzzing.form_text,
    born=fuzzing.form_text,
)
def test_fuzz_dependant_add(world: World, photo, first_name, last_name, born) -> None:  # type: ignore[no-untyped-def]
    tally = fuzzing.Tally()
    client = _client(world.users["family_a"])
    data = {
        "first_name": first_name,
        "last_name": last_name,
        "date_of_birth": born,
        "photo": fuzzing.as_file(photo),
    }
    fuzzing.post_and_check(client, "/me/dependants/add/", data, tally, lambda: None)
    assert tally.failures == []


@FUZZ
@given(photo=fuzzing.upload)
def test_fuzz_dependant_photo(world: World, photo) -> None:  # type: ignore[no-untyped-def]
    tally = fuzzing.Tally()
    dependant = world.objects["dependant_a"]
    client = _client(world.users["family_a"])
    path = f"/me/dependants/{dependant.pk}/photo/"  # type: ignore[attr-defined]
    fuzzing.post_and_check(
        client, path, {"photo": fuzzing.as_file(photo)}, tally, _photos(dependant)
    )
    assert tally.failures == []


@FUZZ
@given(data=fuzzing.booking_post)
def test_fuzz_booking_post(world: World, data) -> None:  # type: ignore[no-untyped-def]
    tally = fuzzing.Tally()
    client = _client(world.users["family_a"])
    fuzzing.post_and_check(client, "/visits/xanadu/book/", data, tally, lambda: None)
    assert tally.failures == []


@pytest.fixture
def socket_world(transactional_db) -> World:  # type: ignore[no-untyped-def]
    built = build_world()
    call_services.call_open(booking=built.objects["booking_a"])
    return built


SOCKET_FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SOCKET_FUZZ
@given(frames=st.lists(fuzzing.signalling_frame, min_size=1, max_size=8))
def test_fuzz_signalling_consumer(socket_world: World, frames) -> None:  # type: ignore[no-untyped-def]
    call = socket_world.objects["call_a"]
    tally = fuzzing.SocketTally()
    cookie = session_cookie(socket_world.users["family_a"])
    asyncio.run(
        fuzzing.socket_session(
            f"/ws/calls/{call.pk}/",  # type: ignore[attr-defined]
            cookie,
            frames,
            tally,
        )
    )
    assert tally.failures == []
    after = Call.objects.get(pk=call.pk)  # type: ignore[attr-defined]
    assert after.status != CallStatus.ENDED and after.end_reason == ""
    assert after.status != CallStatus.PAUSED


@SOCKET_FUZZ
@given(frames=st.lists(fuzzing.dashboard_frame, min_size=1, max_size=8))
def test_fuzz_dashboard_consumer(socket_world: World, frames) -> None:  # type: ignore[no-untyped-def]
    tally = fuzzing.SocketTally()
    cookie = session_cookie(socket_world.users["officer_x"])
    code = socket_world.objects["x"].code  # type: ignore[attr-defined]
    asyncio.run(
        fuzzing.socket_session(
            f"/ws/staff/{code}/dashboard/",
            cookie,
            frames,
            tally,
            contract=fuzzing.DASHBOARD_CONTRACT,
        )
    )
    assert tally.failures == []


def test_the_socket_invariant_catches_a_crash(socket_world: World, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The socket check itself can fail: a consumer that raises is reported."""
    from monitoring import consumers

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(consumers, "socket_message", crash)
    tally = fuzzing.SocketTally()
    cookie = session_cookie(socket_world.users["officer_x"])
    code = socket_world.objects["x"].code  # type: ignore[attr-defined]
    frames = [("text", "[" * 1500)]
    path = f"/ws/staff/{code}/dashboard/"
    asyncio.run(
        fuzzing.socket_session(path, cookie, frames, tally, contract=fuzzing.DASHBOARD_CONTRACT)
    )
    assert tally.failures and "RecursionError" in tally.failures[0]
