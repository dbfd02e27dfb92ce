"""Issue 16's decision rules on the real pipeline (real faces, real pool, fake clock):
unclear checks hold the count, confirmation without a second encoding, a face kept
partly in frame for > 3 s pauses, the nearest of several enrolments, small phone
streams, and skipping detection while the picture is unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from calls.facecheck import FAMILY, analysis
from calls.facecheck.analysis import (
    APPROVED,
    BAND,
    EDGE,
    FULL_BACKSTOP,
    MIRROR_PAD,
    UNAPPROVED,
    UNKNOWN,
    CheckJob,
    analyse,
    merge_sides,
    mirror_sides,
    thumbnail,
)
from calls.facecheck.checker import frame_to_rgb
from tests.calls.facecheck.conftest import (
    canvas,
    encoding_of,
    face_frame,
    next_check,
    video_frame,
)
from tests.calls.facecheck.test_checker import STEP, check, make_checker

OBAMA = face_frame("obama2.jpg", centre=(200, 250))


def with_stranger(stranger: str = "biden.jpg", x: int = 470, width: int = 130) -> object:
    return video_frame(canvas(("obama2.jpg", 130, (200, 250)), (stranger, width, (x, 230))))


def blurred(frame: object, radius: float) -> object:
    rgb = frame_to_rgb(frame)
    return video_frame(np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(radius))))


async def assert_lingers_into_a_pause(checker, clock, events, frame) -> None:  # type: ignore[no-untyped-def]
    """The same frame, checked again and again: paused after 3 s (within two checks)."""
    seconds = 0.0
    while not events.pauses and seconds < 6:
        await check(checker, clock, frame)
        seconds += STEP
    assert events.pauses, "a face kept partly in frame never paused"
    assert 3.0 <= seconds <= 3.0 + 2 * STEP


async def test_an_unclear_check_of_the_same_face_holds_the_count(face_pool, events, clock) -> None:
    # Seen unapproved, then one check in which the stranger is too blurred to detect
    # (the track is kept), then seen again: that is the second sighting, so it pauses.
    # (Before issue 16 the unclear check reset the count: no pause here.)
    checker = make_checker(face_pool, events, clock)
    await check(checker, clock, OBAMA)
    first = await check(checker, clock, with_stranger())
    assert first is not None and len(first.seen(UNAPPROVED)) == 1
    middle = await check(checker, clock, blurred(with_stranger(), 9))
    assert middle is not None and not middle.seen(UNAPPROVED)
    assert events.pauses == []
    await check(checker, clock, with_stranger())
    assert len(events.pauses) == 1
    assert events.pauses[0][3]["lingered"] is False
    await checker.stop()


async def test_approved_faces_only_still_reset_the_count(face_pool, events, clock) -> None:
    checker = make_checker(face_pool, events, clock)
    for _ in range(6):  # stranger, gone (after the track is dropped), stranger, ...
        await check(checker, clock, with_stranger())
        for _ in range(4):
            await check(checker, clock, OBAMA)
    assert events.pauses == []
    await checker.stop()


async def test_the_confirming_check_needs_no_second_encoding(face_pool, events, clock) -> None:
    checker = make_checker(face_pool, events, clock)
    await check(checker, clock, OBAMA)
    await check(checker, clock, with_stranger())
    assert checker.timings[-1].encoded == 1
    assert checker.next_gap(FAMILY) <= 0.1  # the confirming check looks at the next frames
    await check(checker, clock, with_stranger(x=476))  # moved a little
    assert len(events.pauses) == 1
    assert checker.timings[-1].encoded == 0  # confirmed from the tracked face chip
    await checker.stop()


async def test_a_stranger_kept_partly_in_frame_pauses_after_three_seconds(
    face_pool, events, clock
) -> None:
    # Biden's face a third out of the frame: never encoded, so never "unapproved";
    # before issue 16 he could watch the whole call.
    checker = make_checker(face_pool, events, clock)
    hidden = with_stranger(x=640 - 22)
    first = await check(checker, clock, hidden)
    assert first is not None
    edge = [t for t in first.tracks if t.reason == EDGE]
    assert len(edge) == 1
    await assert_lingers_into_a_pause(checker, clock, events, hidden)
    detail = events.pauses[0][3]
    assert detail["lingered"] is True and detail["distance"] is None
    await checker.stop()


async def test_an_approved_face_leaning_out_of_frame_never_pauses(face_pool, events, clock) -> None:
    checker = make_checker(face_pool, events, clock)
    # Whole, then leaning out to the right edge over two seconds, then staying there.
    path = [320, 360, 400, 440, 480, 520, 560, 590, 610] + [618] * 24
    for x in path:
        await check(checker, clock, face_frame("obama2.jpg", centre=(x, 240)))
    assert events.pauses == []
    assert all(t.status == APPROVED for t in checker._sides[FAMILY].tracks)
    await checker.stop()


@pytest.mark.parametrize(("stranger", "x"), [("biden.jpg", 640), ("hopper.jpg", 0)])
async def test_a_stranger_half_out_of_frame_pauses_after_three_seconds(
    face_pool, events, clock, stranger, x
) -> None:
    # Half the face out of the frame, at either edge: HOG does not see half a face;
    # the edge strip joined to its mirror image makes a whole one (found, not matched).
    # Before, such a watcher was never detected at all.
    checker = make_checker(face_pool, events, clock)
    hidden = video_frame(canvas(("obama2.jpg", 130, (320, 250)), (stranger, 130, (x, 230))))
    first = await check(checker, clock, hidden)
    # The first check encodes the approved face: its edge scans wait for the next one.
    assert first is not None and first.mirror_sides == 0
    assert [side for side, _top, _bottom in first.mirror_pending] == ["left", "right"]
    second = await check(checker, clock, hidden)
    assert second is not None and second.mirror_sides == 2 and second.mirrored == 1
    assert second.mirror_pending == ()
    edge = [t for t in second.tracks if t.mirrored]
    assert len(edge) == 1 and edge[0].reason == EDGE and edge[0].distance > 0.65
    assert (edge[0].box[3] == 0) if x == 0 else (edge[0].box[1] == 640)
    await assert_lingers_into_a_pause(checker, clock, events, hidden)
    assert events.pauses[0][3]["lingered"] is True
    # The approved face once, the half face once from its mirror: not at every check.
    assert sum(t.encoded for t in checker.timings) == 2
    await checker.stop()


async def test_an_approved_face_appearing_half_out_of_frame_is_approved_from_its_mirror(
    face_pool, events, clock
) -> None:
    checker = make_checker(face_pool, events, clock)
    half = face_frame("obama2.jpg", centre=(640, 240))
    first = await check(checker, clock, half)
    assert first is not None and first.mirrored == 1
    assert [t.status for t in first.tracks] == [APPROVED]
    for _ in range(12):
        await check(checker, clock, half)
    assert events.pauses == []
    await checker.stop()


async def test_an_approved_face_sliding_quickly_out_of_frame_keeps_its_approval(
    face_pool, events, clock
) -> None:
    # Too fast for the boxes to overlap from check to check, and half out at the end:
    # the mirror-completed half of this photo is 0.65 from the enrolment (not enough
    # to approve it), so without continuing the approved track at the edge it would
    # be a new face lingering there: a false pause after 3 s.
    checker = make_checker(face_pool, events, clock)
    for x in (320, 440, 552):
        await check(checker, clock, face_frame("obama3.jpg", centre=(x, 240)))
    assert {t.status for t in checker._sides[FAMILY].tracks} == {APPROVED}
    for _ in range(12):
        await check(checker, clock, face_frame("obama3.jpg", centre=(640, 240)))
    assert events.pauses == []
    [track] = [t for t in checker._sides[FAMILY].tracks if t.missed == 0]
    assert track.status == APPROVED and track.box[1] == 640


def test_unchanged_edges_are_not_scanned_again() -> None:
    image = canvas(("obama2.jpg", 130, (320, 240)))
    approved = np.stack([encoding_of("obama.jpg")])
    start = analyse(CheckJob(image=image, tracks=(), approved=approved))
    # Nothing to compare with yet: both edges, whole height, put off because this
    # check encodes a new face, and scanned in the next one (not skipped, though the
    # picture did not change).
    assert start.mirror_sides == 0
    assert start.mirror_pending == (("left", 0, 480), ("right", 0, 480))
    first = next_check(image, start, approved)
    assert not first.skipped and first.mirror_sides == 2 and first.mirror_pending == ()
    assert first.encoded == ()
    # The periodic full detection of an unchanged picture: the edges are left alone.
    again = analyse(
        CheckJob(
            image=image,
            tracks=first.tracks,
            approved=approved,
            previous_thumb=first.thumb,
            since_full=9,
            full_every=10,
        )
    )
    assert again.full_because == FULL_BACKSTOP
    assert not again.skipped and not again.partial and again.mirror_sides == 0
    moved = canvas(("obama2.jpg", 130, (320, 240)), ("biden.jpg", 130, (640, 230)))
    third = analyse(
        CheckJob(image=moved, tracks=again.tracks, approved=approved, previous_thumb=again.thumb)
    )
    assert third.mirror_sides >= 1 and third.mirrored == 1
    # Only the rows around a change at the edge are scanned (here the top 40 px).
    job = CheckJob(image=image, tracks=again.tracks, approved=approved, previous_thumb=again.thumb)
    banded = image.copy()
    banded[:40, :] = 255
    sides = mirror_sides(job, thumbnail(banded), (640, 480), None)
    assert sides == [("left", 0, 40 + MIRROR_PAD), ("right", 0, 40 + MIRROR_PAD)]


def test_an_edge_scan_waits_for_one_check_only() -> None:
    """A check that encodes a new face puts its edge scans off to the next check; that
    one scans them even if it encodes a new face too (never put off twice)."""
    approved = np.stack([encoding_of("obama.jpg")])
    image = canvas(("obama2.jpg", 130, (320, 240)))
    pending = (("right", 100, 300),)
    second = analyse(CheckJob(image=image, tracks=(), approved=approved, mirror_pending=pending))
    assert second.encoded and second.mirror_sides == 2 and second.mirror_pending == ()
    # A check that encodes no new face scans at once.
    third = analyse(
        CheckJob(
            image=canvas(("obama2.jpg", 130, (320, 240)), ("biden.jpg", 130, (640, 230))),
            tracks=second.tracks,
            approved=approved,
            previous_thumb=second.thumb,
        )
    )
    assert third.encoded == (third.tracks[-1].id,) and third.mirrored == 1
    assert third.mirror_pending == ()
    assert merge_sides([("left", 0, 100)], (("left", 50, 200), ("right", 10, 20))) == [
        ("left", 0, 200),
        ("right", 10, 20),
    ]


def test_a_turned_face_is_compared_with_the_nearest_of_several_enrolments() -> None:
    image = canvas(("obama3.jpg", 130, (320, 240)))
    one = np.stack([encoding_of("obama2.jpg")])
    several = np.stack([encoding_of("obama2.jpg"), encoding_of("obama.jpg")])
    far = analyse(CheckJob(image=image, tracks=(), approved=one))
    near = analyse(CheckJob(image=image, tracks=(), approved=several))
    assert near.tracks[0].distance is not None and far.tracks[0].distance is not None
    assert near.tracks[0].distance < far.tracks[0].distance - 0.05
    assert near.tracks[0].status == APPROVED


def test_a_small_face_in_a_phone_stream_is_found() -> None:
    # A 320x240 stream with a 60 px face: HOG needs ~80 px, so the frame is scaled up
    # to the detection width (before issue 16 it was scanned at 320 px: not found).
    big = canvas(("biden.jpg", 120, (320, 240)))
    small = np.asarray(Image.fromarray(big).resize((320, 240), Image.Resampling.BILINEAR))
    result = analyse(
        CheckJob(image=small, tracks=(), approved=np.stack([encoding_of("obama.jpg")]))
    )
    assert len(result.detected) == 1
    assert result.tracks[0].status == UNAPPROVED


def test_detection_is_skipped_while_the_picture_is_unchanged_and_approved() -> None:
    approved = np.stack([encoding_of("obama.jpg")])
    still = canvas(("obama2.jpg", 130, (200, 250)))
    noisy = np.clip(
        still.astype(np.int16) + np.random.default_rng(1).integers(-4, 5, still.shape), 0, 255
    ).astype(np.uint8)
    first = analyse(CheckJob(image=still, tracks=(), approved=approved))
    again = analyse(
        CheckJob(
            image=noisy,
            tracks=first.tracks,
            approved=approved,
            next_track_id=first.next_track_id,
            previous_thumb=first.thumb,
        )
    )
    assert again.skipped and again.detected == first.detected and again.detect_ms == 0
    # A stranger popping in changes the picture: detected at once.
    popped = canvas(("obama2.jpg", 130, (200, 250)), ("biden.jpg", 120, (500, 220)))
    seen = analyse(
        CheckJob(
            image=popped,
            tracks=again.tracks,
            approved=approved,
            next_track_id=again.next_track_id,
            previous_thumb=again.thumb,
            since_full=again.since_full,
        )
    )
    assert not seen.skipped and len(seen.seen(UNAPPROVED)) == 1
    # Never more than full_every - 1 skips in a row.
    job = CheckJob(
        image=noisy,
        tracks=first.tracks,
        approved=approved,
        previous_thumb=first.thumb,
        since_full=3,
        full_every=4,
    )
    assert not analyse(job).skipped


async def test_the_childrens_rule_lets_one_unrecognised_child_be_with_the_lead_in_view(
    face_pool, events, clock
) -> None:
    # biden stands in for a child under the establishment's face-check age.
    checker = make_checker(face_pool, events, clock, exempt_children=1)
    for _ in range(12):
        await check(checker, clock, with_stranger())  # lead visitor + the child
    assert events.pauses == []
    # A second unrecognised face: more than the children on the booking.
    crowd = video_frame(
        canvas(
            ("obama2.jpg", 130, (130, 250)),
            ("biden.jpg", 120, (330, 230)),
            ("hopper.jpg", 120, (520, 230)),
        )
    )
    await check(checker, clock, crowd)
    await check(checker, clock, crowd)
    assert len(events.pauses) == 1 and events.pauses[0][3]["lead_out_of_view"] is False
    await checker.stop()


async def test_the_childrens_rule_pauses_when_the_lead_visitor_leaves_the_child_alone(
    face_pool, events, clock
) -> None:
    checker = make_checker(face_pool, events, clock, exempt_children=1)
    await check(checker, clock, with_stranger())
    alone = face_frame("biden.jpg", centre=(470, 230))
    seconds = 0.0
    while not events.pauses and seconds < 8:
        await check(checker, clock, alone)
        seconds += STEP
    assert events.pauses and 3.0 <= seconds <= 3.0 + 3 * STEP
    assert events.pauses[0][3]["lead_out_of_view"] is True
    await checker.stop()


def test_only_a_face_last_seen_at_the_edge_is_continued_there() -> None:
    from calls.facecheck.analysis import Track, _continue_at_the_edge

    at_edge = Track(id=1, box=(170, 617, 314, 474), status=APPROVED)
    inside = Track(id=2, box=(170, 300, 310, 160), status=APPROVED)  # 160 px from the left
    stranger_edge = Track(id=3, box=(170, 630, 310, 500), status=UNAPPROVED)
    half_right = ((181, 640, 284, 590), False, EDGE, 1.2)
    half_left = ((181, 50, 284, 0), False, EDGE, 1.2)
    matched: dict = {}
    _continue_at_the_edge(
        matched, (at_edge, inside, stranger_edge), [half_right, half_left], (640, 480)
    )
    # The right half face continues the approved face that left by the right edge; the
    # left one does not continue the approved face in the middle of the picture, and an
    # unapproved track passes nothing on.
    assert matched == {0: at_edge}


def _replay(
    key: str, seed: int, start: float, checks: int, **options: object
) -> list[tuple[tuple[int, str, str], ...]]:
    """The evaluation's video ``key`` (of the set ``seed``) from ``start`` s, checks
    0.5 s apart: (track id, status, reason) of the tracks at each check."""
    from bench import face_eval

    videos = face_eval.fair_scenarios(False, 10.0, seed) + face_eval.stranger_scenarios(False, seed)
    scenario = next(s for s in videos if s.key == key)
    approved = np.stack(face_eval.approved_encodings(scenario, "visitor")[0])
    result = None
    seen = []
    for step in range(checks):
        image, _present = face_eval.render(scenario, start + step / 2)
        result = next_check(image, result, approved, **options)
        seen.append(tuple((t.id, t.status, t.reason) for t in result.tracks))
    return seen


def _lean_out(keep_missed_edge: int) -> list[tuple[tuple[int, str, str], ...]]:
    """Eileen Collins (approved) leaning out at the left until 65 % of her face is gone,
    then staying there (the held-out video fair-1015 from 464 s)."""
    return _replay("fair-1015", 1, 464.0, 14, keep_missed_edge=keep_missed_edge)


def test_an_approved_face_mostly_out_at_the_edge_keeps_its_track() -> None:
    # Found by neither HOG nor the mirror for a few checks at 65 % out: kept until the
    # mirror finds the half face again, which continues the approved track.
    seen = _lean_out(keep_missed_edge=6)
    assert all(tracks and all(t[1] == APPROVED for t in tracks) for tracks in seen), seen
    # Dropped after two checks, the half face the mirror finds is someone new at the
    # edge (unknown: it would linger into a pause).
    dropped = _lean_out(keep_missed_edge=2)
    assert any(t[1] != APPROVED for tracks in dropped for t in tracks), dropped


def test_an_approved_face_lost_while_sliding_out_keeps_its_track(monkeypatch) -> None:
    # Eileen Collins sliding out at the left (held-out video fair-2045, 518-531 s): HOG
    # loses her while she is still whole, 75 px (half her face's width) from the edge;
    # the mirror finds her half face three checks later (0.61 from her enrolment
    # mirrored: not enough to approve it as a new face). Her track is kept and handed on.
    seen = _replay("fair-2045", 2, 518.0, 26)
    assert all(all(t[1] == APPROVED for t in tracks) for tracks in seen), seen
    assert seen[-1], seen  # her half face, still tracked at the end
    # "Near the edge" as half a face's width: dropped, and a new face there lingers.
    monkeypatch.setattr(analysis, "NEAR_EDGE", 0.5)
    narrow = _replay("fair-2045", 2, 518.0, 26)
    assert any(t[1] != APPROVED for tracks in narrow for t in tracks), narrow


@pytest.mark.parametrize(
    ("key", "start"),
    [
        ("fair-4004", 524.0),  # 60 px, blurred: 0.640 from her enrolment
        ("fair-4029", 404.0),  # 34 px in a 320 x 240 phone stream: 0.643
    ],
)
def test_an_approved_face_small_in_a_poor_picture_is_unclear_not_a_stranger(
    key: str, start: float
) -> None:
    # Held-out videos (set 4) where such a face paused the call: the unknown band
    # above the tolerance (0.07) now takes it in, so it never counts against them.
    seen = _replay(key, 4, start, 12)
    assert not any(t[1] == UNAPPROVED for tracks in seen for t in tracks), seen
    assert any(t[2] == BAND for tracks in seen for t in tracks), seen
    # The band it had (0.04): seen as a stranger.
    narrow = _replay(key, 4, start, 12, unknown_band=0.04)
    assert any(t[1] == UNAPPROVED for tracks in narrow for t in tracks), narrow


def test_an_approved_half_face_mirrored_just_within_the_tolerance_never_lingers() -> None:
    # Eileen Collins, 53 % out at the left in bright light (held-out video fair-4045
    # from 130 s): her mirrored half is 0.581 from her enrolment, within the tolerance
    # but not by the mirror's margin. Unclear (band), it never lingers into a pause.
    seen = _replay("fair-4045", 4, 130.0, 24)
    last = seen[-10:]
    assert all(any(t[2] == BAND for t in tracks) for tracks in last), last
    assert not any(t[2] == EDGE for tracks in last for t in tracks), last


def test_a_stranger_at_the_edge_beside_an_approved_face_is_not_taken_for_it() -> None:
    # Held-out video linger-partial-60%-left (set 5): Eileen Collins, a stranger, pops
    # in 60 % out at the left while Barack Obama (approved) sits 107 px from that edge
    # and HOG misses him in that check. Her half face is beside his, not where he was:
    # it is not handed his approval, and it stays unclear at the edge (it lingers).
    seen = _replay("linger-partial-60%-left/collins.jpg", 5, 0.0, 12)
    # From 2 s on, a track for her: unclear at the edge, never approved.
    assert all(any(t[1] == UNKNOWN and t[2] == EDGE for t in tracks) for tracks in seen[4:]), seen


def test_a_stranger_whose_picture_hides_a_still_approved_face_is_not_taken_for_it(
    monkeypatch,
) -> None:
    # Held-out video linger-partial-35%-left (set 1): Eileen Collins, a stranger, pops
    # in 35 % out at the left and her picture hides Barack Obama (approved), who sat
    # still 107 px from that edge. He did not leave by the edge (he was still, and her
    # face's inner side is 1.1 of his face's width from where his was, in one check):
    # her face is not handed his approval, it stays unclear at the edge and lingers.
    seen = _replay("linger-partial-35%-left/collins.jpg", 1, 0.0, 14)
    assert all(any(t[1] == UNKNOWN and t[2] == EDGE for t in tracks) for tracks in seen[4:]), seen
    # Handed on whatever the approved face did before: she is taken for him.
    monkeypatch.setattr(analysis, "_leaving", lambda track, box, left, width: True)
    handed = _replay("linger-partial-35%-left/collins.jpg", 1, 0.0, 14)
    assert all(all(t[1] == APPROVED for t in tracks) for tracks in handed[4:]), handed
