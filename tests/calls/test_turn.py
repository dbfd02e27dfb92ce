"""TURN REST API credentials (calls/turn.py): per participant, valid for the call."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from calls.turn import MARGIN_SECONDS, ice_servers_for, turn_credentials
from tests.calls.conftest import make_setup

SECRET = "s" * 40


@pytest.fixture
def turn(settings):  # type: ignore[no-untyped-def]
    settings.TURN_URLS = ["turn:turn.example.org:3478", "turns:turn.example.org:5349"]
    settings.TURN_SECRET = SECRET
    settings.ICE_SERVERS = [{"urls": ["stun:stun.example.org"]}]


def test_credentials_are_what_coturns_use_auth_secret_checks() -> None:
    username, password = turn_credentials(name="u1", expires=1_700_000_000, secret=SECRET)
    assert username == "1700000000:u1"
    expected = hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(password) == expected


@pytest.mark.django_db
def test_each_participant_gets_their_own_credentials_valid_until_the_slot_ends(turn) -> None:  # type: ignore[no-untyped-def]
    setup = make_setup()
    from calls.models import Call

    call = Call.objects.create(booking=setup.booking)
    family = ice_servers_for(setup.family, call)
    terminal = ice_servers_for(setup.terminal_user, call)
    assert family[0] == {"urls": ["stun:stun.example.org"]}
    assert family[1]["urls"] == ["turn:turn.example.org:3478", "turns:turn.example.org:5349"]
    assert family[1]["username"] != terminal[1]["username"]
    assert family[1]["credential"] != terminal[1]["credential"]
    expires = int(family[1]["username"].split(":")[0])
    assert expires == int(setup.booking.ends_at.timestamp()) + MARGIN_SECONDS
    assert str(setup.family.pk) in family[1]["username"]
    assert setup.family.email not in family[1]["username"]


def test_without_turn_settings_only_the_static_servers(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TURN_URLS = []
    settings.ICE_SERVERS = [{"urls": ["stun:stun.example.org"]}]
    assert ice_servers_for(None) == [{"urls": ["stun:stun.example.org"]}]


@pytest.mark.django_db
def test_a_past_call_gets_only_the_margin(turn) -> None:  # type: ignore[no-untyped-def]
    setup = make_setup(started_minutes_ago=120, slot_minutes=30)
    from calls.models import Call

    call = Call.objects.create(booking=setup.booking)
    servers = ice_servers_for(setup.family, call)
    expires = int(servers[1]["username"].split(":")[0])
    now = timezone.now()
    assert now.timestamp() < expires <= (now + timedelta(seconds=MARGIN_SECONDS + 5)).timestamp()


@pytest.mark.django_db
def test_the_call_page_hands_the_family_its_turn_credentials(turn) -> None:  # type: ignore[no-untyped-def]
    setup = make_setup()
    from calls.models import Call

    setup.booking.aup_accepted_at = timezone.now()
    setup.booking.save(update_fields=["aup_accepted_at"])
    call = Call.objects.create(booking=setup.booking)
    client = Client()
    client.force_login(setup.family)
    page = client.get(f"/calls/{call.pk}/").content.decode()
    assert "turns:turn.example.org:5349" in page
    assert f"u{setup.family.pk}-c" in page
