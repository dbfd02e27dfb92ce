"""Face checks for live calls: pause when an unapproved face appears, resume fairly.

The media relay creates one :class:`FaceChecker` per call on a :class:`FaceCheckPool`
shared by the whole relay process (``shared_pool()``), offers it every decoded video
frame, and acts on its ``on_pause`` / ``on_resume`` callbacks. The face work itself
(:mod:`calls.facecheck.analysis`) runs in worker processes, because dlib holds the GIL.

Modules:

- ``analysis``  — the pure per-frame analysis run in the workers (detect, track, encode);
- ``decision``  — the per-stream pause/resume state machine (no I/O, fake-clock friendly);
- ``pool``      — the shared process pool, restarted when a worker dies;
- ``checker``   — ``FaceChecker``, the asyncio side the relay talks to;
- ``snapshot``  — the evidence JPEG cropped around the unapproved face.

See ``calls/facecheck/README.md`` for the integration API.
"""

from calls.facecheck.checker import (
    FAMILY,
    PRISONER,
    REASON_UNAPPROVED_FACE,
    CheckTiming,
    FaceChecker,
    frame_to_rgb,
)
from calls.facecheck.pool import FaceCheckPool, WorkerCrashed, close_shared_pool, shared_pool

__all__ = [
    "FAMILY",
    "PRISONER",
    "REASON_UNAPPROVED_FACE",
    "CheckTiming",
    "FaceCheckPool",
    "FaceChecker",
    "WorkerCrashed",
    "close_shared_pool",
    "frame_to_rgb",
    "shared_pool",
]
