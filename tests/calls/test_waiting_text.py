"""Each side's placeholder names whom it is waiting for (issue 13, defect 3: swapped)."""

from calls.relay.call import OTHER_SIDE, WAITING_TEXT


def test_the_family_waits_for_the_prison_and_the_laptop_for_its_visitor() -> None:
    assert "prison" in WAITING_TEXT["family"].lower()
    assert "visitor" in WAITING_TEXT["prisoner"].lower()
    # The text names the side the viewer is waiting for, never the viewer.
    for viewer, awaited in OTHER_SIDE.items():
        assert ("visitor" in WAITING_TEXT[viewer].lower()) == (awaited == "family")
