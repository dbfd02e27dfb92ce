"""Form fields of the booking pages against hostile input."""

from __future__ import annotations

import pytest
from django import forms

from bookings.forms import IdList


@pytest.mark.parametrize("item", ["²", "١٢", "¹0", "1.0", "-1", " 1", "", "1" * 19])
def test_id_list_refuses_what_is_not_plain_ascii_digits(item: str) -> None:
    with pytest.raises(forms.ValidationError):
        IdList().clean([item])


def test_id_list_keeps_plain_ids() -> None:
    assert IdList(required=False).clean(["1", "42"]) == [1, 42]


def test_a_superscript_id_in_the_booking_post_is_a_400_not_a_500(client, db) -> None:  # type: ignore[no-untyped-def]
    from tests.security.world import build_world

    world = build_world()
    client.force_login(world.users["family_a"])
    response = client.post(
        "/visits/xanadu/book/",
        {"connection": world.objects["connection_a"].pk, "visitors": ["²"]},  # type: ignore[attr-defined]
    )
    assert response.status_code == 400
