"""Fuzz the upload forms, the booking post and the signalling consumer.

    .venv/bin/python bench/fuzz.py                 # 10,000 cases per target
    .venv/bin/python bench/fuzz.py --cases 500 --only booking
    .venv/bin/python bench/fuzz.py --only sockets     # both socket consumers

Runs the hypothesis generators of tests/security/fuzzing.py (the test suite runs the
same ones for 40-60 examples) against a throw-away test database (SQLite, or
DATABASE_URL with TEST_DATABASE_NAME like the tests) with Django's test client and
channels' WebsocketCommunicator, in this process. Targets:

- identity: the ID + selfie upload (/me/identity/),
- dependant: adding a dependant with a photo (/me/dependants/add/),
- dependant-photo: replacing a dependant's photo,
- booking: the booking form post (/visits/<code>/book/),
- signalling: frames sent to the CallConsumer as the family,
- dashboard: frames sent to the DashboardConsumer as an officer (--only sockets: both).
  Socket frames go through the whole ASGI stack (Origin check, session cookie, router)
  in sessions of 20: random JSON, nested, deep (up to 100,000 brackets), huge (either
  side of the 4 KB and 64 KB limits) and hostile JSON (NaN, 5,000-digit numbers, lone
  surrogates, duplicate keys), binary and empty frames. The call socket's rate limit
  is lifted so that frames reach the reader (floods: tests/calls/test_consumer.py,
  tests/security/test_socket_input.py).

Every case checks: no 500 and no exception; a refused post stores nothing (no new
identity check, dependant or booking, the dependant's photo unchanged); a consumer
answers only with contract messages and close codes, a frame the reader refuses gets
its error reply, and the call is never ended or paused. Bounded: at most --cases
cases and --seconds seconds per target. Prints cases run, failures (for sockets:
error replies, and crashes), statuses and cases per second, with the first few
failures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOCKETS = ("signalling", "dashboard")
TARGETS = ("identity", "dependant", "dependant-photo", "booking", *SOCKETS)


class OutOfTime(Exception):
    pass


class Done(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=900.0)
    parser.add_argument("--only", choices=(*TARGETS, "sockets"), action="append")
    args = parser.parse_args()
    if not 1 <= args.cases <= 1_000_000:
        raise SystemExit("--cases must be 1..1,000,000")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purplevisits.settings")
    os.environ.setdefault("LOG_LEVEL", "CRITICAL")
    import logging

    import django

    django.setup()
    logging.disable(logging.CRITICAL)
    # Frames of up to 100 KB: hypothesis warns that their repr is large.
    warnings.filterwarnings("ignore", message="Generating overly large repr")
    from django.db import connection
    from django.test.utils import override_settings, setup_test_environment

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    media = tempfile.TemporaryDirectory(prefix="fuzz-media-")
    storages = {
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": media.name, "base_url": None},
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    try:
        with override_settings(STORAGES=storages):
            from tests.security.world import build_world

            world = build_world()
            chosen = [t for t in TARGETS if t in (args.only or TARGETS)]
            if args.only and "sockets" in args.only:
                chosen = [t for t in TARGETS if t in chosen or t in SOCKETS]
            for target in chosen:
                run(target, world, args.cases, args.seconds)
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
        media.cleanup()


def run(target: str, world: Any, cases: int, seconds: float) -> None:
    from django.test import Client
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from calls import consumers
    from calls import services as call_services
    from calls.models import Call, CallStatus
    from identity.models import Dependant, VerificationStatus
    from tests import factories
    from tests.security import fuzzing
    from tests.security.sockets import session_cookie

    newcomer = factories.VisitorProfileFactory(
        verification_status=VerificationStatus.NOT_STARTED, biometric_consent=True
    ).user
    family = Client()
    family.force_login(world.users["family_a"])
    fresh = Client()
    fresh.force_login(newcomer)
    dependant = world.objects["dependant_a"]
    tally = fuzzing.Tally()
    deadline = time.monotonic() + seconds
    many = settings(
        max_examples=cases * 2 if target not in SOCKETS else max(1, cases // 5),
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )

    def photo_name() -> str:
        return Dependant.objects.get(pk=dependant.pk).photo.name

    def nothing() -> None:
        return None

    def budget() -> None:
        if tally.cases >= cases:
            raise Done
        if time.monotonic() > deadline:
            raise OutOfTime

    if target == "identity":

        @many
        @given(fuzzing.upload, fuzzing.upload)
        def case(id_photo, selfie):  # type: ignore[no-untyped-def]
            budget()
            data = {"id_photo": fuzzing.as_file(id_photo), "selfie": fuzzing.as_file(selfie)}
            fuzzing.post_and_check(fresh, "/me/identity/", data, tally, nothing)

    elif target == "dependant":

        @many
        @given(fuzzing.upload, fuzzing.form_text, fuzzing.form_text, fuzzing.form_text)
        def case(photo, first, last, born):  # type: ignore[no-untyped-def]
            budget()
            data = {
                "first_name": first,
                "last_name": last,
                "date_of_birth": born,
                "photo": fuzzing.as_file(photo),
            }
            fuzzing.post_and_check(family, "/me/dependants/add/", data, tally, nothing)

    elif target == "dependant-photo":
        path = f"/me/dependants/{dependant.pk}/photo/"

        @many
        @given(fuzzing.upload)
        def case(photo):  # type: ignore[no-untyped-def]
            budget()
            fuzzing.post_and_check(
                family, path, {"photo": fuzzing.as_file(photo)}, tally, photo_name
            )

    elif target == "booking":
        path = f"/visits/{world.objects['x'].code}/book/"

        @many
        @given(fuzzing.booking_post)
        def case(data):  # type: ignore[no-untyped-def]
            budget()
            fuzzing.post_and_check(family, path, data, tally, nothing)

    else:
        # The per-socket rate limit is lifted so that frames reach the reader (floods:
        # tests/calls/test_consumer.py, tests/security/test_socket_input.py).
        consumers.RATE_BURST = 10**9
        consumers.RATE_PER_SECOND = 10.0**9
        call = call_services.call_open(booking=world.objects["booking_a"])
        if target == "signalling":
            path, user, frame = f"/ws/calls/{call.pk}/", "family_a", fuzzing.signalling_frame
            contract = fuzzing.CALL_CONTRACT
        else:
            code = world.objects["x"].code
            path, user, frame = f"/ws/staff/{code}/dashboard/", "officer_x", fuzzing.dashboard_frame
            contract = fuzzing.DASHBOARD_CONTRACT
        tally = fuzzing.SocketTally()

        @many
        @given(st.lists(frame, min_size=20, max_size=20))
        def case(frames):  # type: ignore[no-untyped-def]
            budget()
            # A fresh sign-in per session: a long run stays inside the staff idle limit.
            cookie = session_cookie(world.users[user])
            asyncio.run(
                fuzzing.socket_session(path, cookie, frames, tally, quiet=0.005, contract=contract)
            )
            after = Call.objects.get(pk=call.pk)
            if after.status in (CallStatus.ENDED, CallStatus.PAUSED) or after.end_reason:
                tally.failures.append(f"call changed to {after.status} {after.end_reason}")
                Call.objects.filter(pk=call.pk).update(status=CallStatus.WAITING, end_reason="")

    started = time.perf_counter()
    stopped = ""
    try:
        case()
    except Done:
        pass
    except OutOfTime:
        stopped = f" (stopped at the {seconds:.0f} s bound)"
    elapsed = time.perf_counter() - started
    statuses = ", ".join(f"{k}={v}" for k, v in sorted(tally.statuses.items()))
    # Sockets: cases are frames, errors the error replies (refusals, as designed),
    # crashes anything else (an exception, a message or close code outside the contract,
    # a refused frame without its error).
    errors = f" errors={tally.errors}" if isinstance(tally, fuzzing.SocketTally) else ""
    label = "crashes" if isinstance(tally, fuzzing.SocketTally) else "failures"
    print(
        f"{target:16s} cases={tally.cases:6d}{errors} {label}={len(tally.failures)} "
        f"{tally.cases / elapsed:7.1f} cases/s in {elapsed:.0f} s{stopped}"
        + (f"  statuses: {statuses}" if statuses else "")
    )
    for failure in tally.failures[:5]:
        print(f"    {failure}")


if __name__ == "__main__":
    main()
