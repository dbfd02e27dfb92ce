"""Fuzz the upload forms, the booking post and the signalling consumer.

    .venv/bin/python bench/fuzz.py                 # 10,000 cases per target
    .venv/bin/python bench/fuzz.py --cases 500 --only booking

Runs the hypothesis generators of tests/security/fuzzing.py (the test suite runs the
same ones for 40-60 examples) against a throw-away test database (SQLite, or
DATABASE_URL with TEST_DATABASE_NAME like the tests) with Django's test client and
channels' WebsocketCommunicator, in this process. Targets:

- identity: the ID + selfie upload (/me/identity/),
- dependant: adding a dependant with a photo (/me/dependants/add/),
- dependant-photo: replacing a dependant's photo,
- booking: the booking form post (/visits/<code>/book/),
- signalling: frames sent to the CallConsumer as the family (the per-socket rate
  limit is lifted so that frames reach the parser; floods are tested in tests/calls).

Every case checks: no 500 and no exception; a refused post stores nothing (no new
identity check, dependant or booking, the dependant's photo unchanged); the consumer
answers only with contract messages and close codes, and never ends or pauses the
call. Bounded: at most --cases cases and --seconds seconds per target. Prints cases
run, failures (with the first few), statuses and cases per second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = ("identity", "dependant", "dependant-photo", "booking", "signalling")


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
    parser.add_argument("--only", choices=TARGETS, action="append")
    args = parser.parse_args()
    if not 1 <= args.cases <= 1_000_000:
        raise SystemExit("--cases must be 1..1,000,000")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purplevisits.settings")
    os.environ.setdefault("LOG_LEVEL", "CRITICAL")
    import logging

    import django

    django.setup()
    logging.disable(logging.CRITICAL)
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
            for target in args.only or TARGETS:
                run(target, world, args.cases, args.seconds)
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
        media.cleanup()


def run(target: str, world: Any, cases: int, seconds: float) -> None:
    from channels.routing import URLRouter
    from django.test import Client
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from calls import consumers
    from calls import services as call_services
    from calls.models import Call, CallStatus
    from calls.routing import websocket_urlpatterns
    from identity.models import Dependant, VerificationStatus
    from tests import factories
    from tests.security import fuzzing

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
        max_examples=cases * 2 if target != "signalling" else max(1, cases // 5),
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
        consumers.RATE_BURST = 10**9
        consumers.RATE_PER_SECOND = 10.0**9
        call = call_services.call_open(booking=world.objects["booking_a"])
        application = URLRouter(websocket_urlpatterns)
        user = world.users["family_a"]

        @many
        @given(st.lists(fuzzing.signalling_frame, min_size=20, max_size=20))
        def case(frames):  # type: ignore[no-untyped-def]
            budget()
            asyncio.run(
                fuzzing.socket_session(
                    application, f"/ws/calls/{call.pk}/", user, frames, tally, quiet=0.005
                )
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
    print(
        f"{target:16s} cases={tally.cases:6d} failures={len(tally.failures)} "
        f"{tally.cases / elapsed:7.1f} cases/s in {elapsed:.0f} s{stopped}"
        + (f"  statuses: {statuses}" if statuses else "")
    )
    for failure in tally.failures[:5]:
        print(f"    {failure}")


if __name__ == "__main__":
    main()
