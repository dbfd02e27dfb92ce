"""Plain words for a call's codes: the one place that turns a status, a pause reason,
an end reason, a side or an alert kind into what a person reads (ready for Welsh).

Codes stay in the signalling contract and the database; pages, tiles and the `state`
and `alert` messages carry these labels beside them.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

STATUS = {
    "waiting": _("Waiting to start"),
    "live": _("Live"),
    "paused": _("Paused"),
    "ended": _("Ended"),
    # A booking with no call yet (the dashboard's upcoming and ended columns).
    "confirmed": _("Booked"),
    "completed": _("Completed"),
    "no_show": _("Nobody joined"),
    "terminated": _("Ended by staff"),
}
PAUSE_REASON = {
    "unapproved_face": _("an unapproved face was seen"),
    "staff": _("paused by staff"),
}
END_REASON = {
    "completed": _("completed"),
    "terminated": _("ended by staff"),
    "time_up": _("time ran out"),
    "revoked": _("an approval was withdrawn"),
    "failed": _("the call could not continue"),
    "no_show": _("nobody joined"),
}
SIDE = {
    "family": _("family's side"),
    "prisoner": _("prison laptop's side"),
}
ROLE = {
    "family": _("Family"),
    "prisoner": _("Prison laptop"),
    "monitor": _("Staff"),
    "system": _("automatic"),
}
ALERT = {
    "unapproved_face": _("Unapproved face on camera"),
    "participant_dropped": _("Participant lost connection"),
    "face_checks_off": _("Face checks are off for the family's side (someone was checked by hand)"),
}


def status_label(
    status: str, pause_reason: str | None = None, end_reason: str | None = None
) -> str:
    """'Paused: an unapproved face was seen', 'Ended: time ran out', 'Live'."""
    label = str(STATUS.get(status, _("Unknown")))
    reason = None
    if status == "paused" and pause_reason:
        reason = PAUSE_REASON.get(pause_reason)
    elif status == "ended" and end_reason:
        reason = END_REASON.get(end_reason)
    return f"{label}: {reason}" if reason else label


def alert_label(kind: str, side: str | None = None) -> str:
    """'Unapproved face on camera (family's side)'."""
    label = str(ALERT.get(kind, _("Alert")))
    if kind == "face_checks_off" or not side or side not in SIDE:
        return label
    return f"{label} ({SIDE[side]})"


def event_reason_label(kind: str, reason: str) -> str:
    """A call event's reason in plain words: codes become labels, staff notes stay."""
    if kind == "paused" and reason in PAUSE_REASON:
        return str(PAUSE_REASON[reason])
    if kind == "ended" and reason in END_REASON:
        return str(END_REASON[reason])
    return reason


def state_labels(state: dict[str, Any]) -> dict[str, Any]:
    """A ``state`` message with its labels in the active language (the viewer's: the
    consumers activate it). The payload is built wherever the change happened (an
    officer's request, the relay's thread), in that place's language, and the same
    payload goes to every socket of the call: each socket labels it for its own reader."""
    labelled = dict(state)
    if "status" in state:
        labelled["status_label"] = status_label(
            str(state.get("status") or ""), state.get("pause_reason"), state.get("end_reason")
        )
    participants = state.get("participants")
    if isinstance(participants, list):
        labelled["participants"] = [
            {**item, "label": str(ROLE[item["role"]])}
            if isinstance(item, dict) and item.get("role") in ROLE
            else item
            for item in participants
        ]
    return labelled
