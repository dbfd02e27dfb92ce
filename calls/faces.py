"""Face checks of the calls running in a relay process (the relay hook).

``attach_face_checks`` is listed in ``settings.RELAY_CALL_HOOKS``: the relay calls it
with every new :class:`~calls.relay.call.RelayCall`. It loads the call's approved
encodings once (in a thread; decrypted only in memory), starts a
:class:`~calls.facecheck.FaceChecker` fed from the relay's decoded frames, and turns
its decisions into the call's state:

- an unapproved face confirmed → the gate closes at once (``RelayCall.hold``), then
  ``call_pause(reason="unapproved_face")`` records it (CallEvent with the side and
  the check's detail) and tells everyone; ``alert_raise`` stores the snapshot and
  tells the establishment's dashboard; the call's monitors get an ``alert`` message;
- clear again for the establishment's auto-resume time → ``call_resume`` without an
  actor (which never lifts a staff pause), once no side is face-paused any more;
- staff resume the call (paused → live from the database while the checker still
  holds a face pause) → ``checker.staff_resume()`` so both agree.

Children's rule (``Establishment.face_check_children_under``, issue 16): dependants on
the booking younger than that on the day of the call are not face-checked; the checker
lets that many unrecognised faces be while someone approved (the lead visitor) is in
view (see calls/facecheck/decision.py). :func:`children_rule_text` is the sentence the
booking and pre-call pages show the family.

People verified by hand (no consent to face matching) have no encoding. When the
booking includes such a person the family side is not checked at all for that call
(otherwise they would pause it as a stranger); the prisoner side is still checked when
the prisoner has an enrolment. Monitors are told with an ``alert`` of kind
``face_checks_off`` (docs/signalling.md).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from calls.facecheck import FAMILY, PRISONER, FaceChecker, shared_pool
from purplevisits.realtime import call_group

if TYPE_CHECKING:
    from calls.relay.call import RelayCall
    from establishments.models import Establishment

logger = logging.getLogger(__name__)

ALERT_UNAPPROVED_FACE = "unapproved_face"
ALERT_FACE_CHECKS_OFF = "face_checks_off"
OFF_MANUAL_VERIFICATION = "manual_verification"

# Every FaceChecks of this process, by call id (tests and the bench look them up).
active: dict[str, CallFaceChecks] = {}


@dataclass
class FacePlan:
    """What to check on one call, loaded once from the database."""

    establishment: Establishment
    approved: list[np.ndarray] = field(default_factory=list)
    prisoner: np.ndarray | None = None
    family_checked: bool = True
    unenrolled: int = 0  # people on the booking without an encoding (verified by hand)
    exempt_children: int = 0  # dependants under the establishment's face-check age


def load_plan(call_id: str) -> FacePlan | None:
    """Read (sync, in a thread) the booking's approved encodings and who lacks one."""
    from calls.models import Call
    from identity.models import FaceEnrolment
    from identity.selectors import approved_encodings_for_booking, prisoner_encoding

    call = (
        Call.objects.select_related("booking__establishment", "booking__prisoner")
        .filter(pk=call_id)
        .first()
    )
    if call is None:
        return None
    booking = call.booking
    rows = list(booking.visitors.select_related("dependant"))
    enrolled_profiles = set(
        FaceEnrolment.objects.filter(
            profile_id__in=[r.profile_id for r in rows if r.profile_id]
        ).values_list("profile_id", flat=True)
    )
    enrolled_dependants = set(
        FaceEnrolment.objects.filter(
            dependant_id__in=[r.dependant_id for r in rows if r.dependant_id]
        ).values_list("dependant_id", flat=True)
    )
    unenrolled = sum(
        1
        for r in rows
        if (r.profile_id and r.profile_id not in enrolled_profiles)
        or (r.dependant_id and r.dependant_id not in enrolled_dependants)
    )
    return FacePlan(
        establishment=booking.establishment,
        approved=approved_encodings_for_booking(booking),
        prisoner=prisoner_encoding(booking.prisoner),
        family_checked=unenrolled == 0,
        unenrolled=unenrolled,
        exempt_children=exempt_children(booking.establishment, [r.dependant for r in rows]),
    )


def exempt_children(establishment: Establishment, dependants: list[Any]) -> int:
    """How many of ``dependants`` (None entries ignored) are under the establishment's
    face-check age today (the establishment's local date)."""
    under = int(establishment.face_check_children_under or 0)
    if not under:
        return 0
    today = timezone.now().astimezone(establishment.tz).date()
    return sum(1 for d in dependants if d is not None and d.age_on(today) < under)


def children_rule_text(establishment: Establishment) -> str:
    """What the family is told at booking and on the pre-call page ("" when off)."""
    under = int(establishment.face_check_children_under or 0)
    if not under:
        return ""
    return ngettext(
        "Children under %(age)d are not face-checked on the call. The adult who booked "
        "must stay in view while they are on camera.",
        "Children under %(age)d are not face-checked on the call. The adult who booked "
        "must stay in view while they are on camera.",
        under,
    ) % {"age": under}


def _record_checks_off(call_id: str) -> None:
    """The dashboard's alert for a call whose family side is not checked (sync)."""
    from monitoring.services import alert_face_checks_off

    try:
        alert_face_checks_off(call_id=call_id)
    except Exception:  # the checks go on whatever happens to the alert
        logger.exception("Call %s: could not record the face-checks-off alert.", call_id)


def _pause(call_id: str, side: str, detail: dict[str, Any], snapshot: bytes) -> dict[str, Any]:
    """Pause the call and raise the alert (sync, in a thread). Returns news for monitors."""
    from calls.models import Call, PauseReason
    from calls.services import call_pause
    from monitoring.models import AlertKind
    from monitoring.services import alert_raise

    paused = call_pause(call_id=call_id, reason=PauseReason.UNAPPROVED_FACE, detail=detail)
    call = Call.objects.select_related("booking__establishment").get(pk=call_id)
    alert = alert_raise(
        call=call, kind=AlertKind.UNAPPROVED_FACE, side=side, snapshot_jpeg=snapshot or None
    )
    snapshot_url = (
        reverse(
            "monitoring:alert_snapshot",
            kwargs={"code": call.booking.establishment.code, "alert_id": alert.pk},
        )
        if alert.snapshot
        else None
    )
    return {"paused": paused, "alert_id": alert.pk, "snapshot_url": snapshot_url}


def _resume(call_id: str, detail: dict[str, Any]) -> bool:
    from calls.services import call_resume

    return call_resume(call_id=call_id, actor=None, detail=detail)


class CallFaceChecks:
    """The face checks of one RelayCall."""

    def __init__(self, relay_call: RelayCall) -> None:
        self.relay_call = relay_call
        self.call_id = relay_call.call_id
        self.checker: FaceChecker | None = None
        self.plan: FacePlan | None = None
        self.ready = asyncio.Event()
        self._removers: list[Any] = []
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def begin(self) -> None:
        active[self.call_id] = self
        self.relay_call.add_close_callback(self.stop)
        self.relay_call.add_peer_observer(self._on_peer)
        self._task = asyncio.ensure_future(self._start())

    async def _start(self) -> None:
        try:
            plan = await database_sync_to_async(load_plan)(self.call_id)
            if plan is None or self._stopped:
                return
            self.plan = plan
            if not plan.family_checked:
                logger.info(
                    "Call %s: %d person(s) verified by hand; family-side face checks off.",
                    self.call_id,
                    plan.unenrolled,
                )
                await self._tell_monitors(self._off_alert())
                await database_sync_to_async(_record_checks_off)(self.call_id)
            if not plan.family_checked and plan.prisoner is None:
                return  # nothing to check on this call
            checker = FaceChecker.for_establishment(
                plan.establishment,
                pool=shared_pool(),
                approved_encodings=plan.approved,
                prisoner_encoding=plan.prisoner,
                check_family=plan.family_checked,
                exempt_children=plan.exempt_children,
                on_pause=self._on_pause,
                on_resume=self._on_resume,
                label=self.call_id,
            )
            plan.approved, plan.prisoner = [], None  # the checker holds its own copy
            self.checker = checker
            for side in checker.sides:
                self._removers.append(
                    self.relay_call.add_video_observer(side, self._observer(checker, side))
                )
            self.relay_call.add_state_observer(self._on_state)
            checker.start()
        except Exception:
            logger.exception("Call %s: face checks could not start.", self.call_id)
        finally:
            self.ready.set()

    def _observer(self, checker: FaceChecker, side: str):  # type: ignore[no-untyped-def]
        relay_call = self.relay_call

        def offer(frame: Any) -> None:
            # Only a started call is checked: a pause needs a live call to pause.
            if relay_call.status in ("live", "paused"):
                checker.offer_frame(side, frame)

        return offer

    def _off_alert(self) -> dict[str, Any]:
        return {
            "type": "call.alert",
            "kind": ALERT_FACE_CHECKS_OFF,
            "side": FAMILY,
            "reason": OFF_MANUAL_VERIFICATION,
            "snapshot_url": None,
        }

    def _on_peer(self, role: str, channel: str) -> None:
        # A monitor who joins later is told too (the dashboard has the stored alert).
        if role == "monitor" and self.plan is not None and not self.plan.family_checked:
            asyncio.ensure_future(self._send_to(channel, self._off_alert()))

    async def _send_to(self, channel: str, message: dict[str, Any]) -> None:
        layer = get_channel_layer()
        if layer is not None:
            try:
                await layer.send(channel, message)
            except Exception:
                logger.exception("Call %s: could not tell a monitor.", self.call_id)

    async def _tell_monitors(self, message: dict[str, Any]) -> None:
        layer = get_channel_layer()
        if layer is not None:
            try:
                await layer.group_send(call_group(self.call_id), message)
            except Exception:
                logger.exception("Call %s: could not tell the monitors.", self.call_id)

    # --- the checker's decisions -----------------------------------------------------

    async def _on_pause(
        self, side: str, reason: str, snapshot: bytes, detail: dict[str, Any]
    ) -> None:
        self.relay_call.hold()  # placeholder now; the database follows
        try:
            news = await database_sync_to_async(_pause)(self.call_id, side, detail, snapshot)
        except Exception:
            # Not recorded: open the gate again and let the checker confirm afresh, so
            # the checker never holds a pause the database does not know about.
            self.relay_call.release()
            if self.checker is not None:
                self.checker.staff_resume(side)
            raise
        if not news["paused"]:
            # Already paused (staff, the other side) or not live: the database decides.
            self.relay_call.release()
        await self._tell_monitors(
            {
                "type": "call.alert",
                "kind": ALERT_UNAPPROVED_FACE,
                "side": side,
                "alert_id": news["alert_id"],
                "snapshot_url": news["snapshot_url"],
            }
        )

    async def _on_resume(self, side: str, detail: dict[str, Any]) -> None:
        checker = self.checker
        if checker is not None and checker.paused_sides:
            return  # the other side still shows a stranger
        await database_sync_to_async(_resume)(self.call_id, detail)

    def _on_state(self, previous: dict[str, Any], state: dict[str, Any]) -> None:
        checker = self.checker
        if checker is None:
            return
        if previous.get("status") == "paused" and state.get("status") == "live":
            # Resumed while the checker still holds a face pause: staff decided.
            resumed = checker.staff_resume()
            if resumed:
                logger.info(
                    "Call %s: staff resumed; face pause of %s lifted.", self.call_id, resumed
                )

    async def stop(self) -> None:
        self._stopped = True
        active.pop(self.call_id, None)
        for remove in self._removers:
            remove()
        self._removers.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self.checker is not None:
            await self.checker.stop()
        self.plan = None


def attach_face_checks(relay_call: RelayCall) -> None:
    """RELAY_CALL_HOOKS entry: face checks for every call of this relay process."""
    if not settings.FACE_CHECKS_ENABLED:
        return
    CallFaceChecks(relay_call).begin()


__all__ = [
    "PRISONER",
    "CallFaceChecks",
    "FacePlan",
    "attach_face_checks",
    "children_rule_text",
    "exempt_children",
    "load_plan",
]
