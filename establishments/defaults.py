"""National defaults for every per-establishment setting (DOMAIN.md).

An administrator changes them per establishment in Django admin; new establishments
start from these values.
"""

CALLS_PER_MONTH = 1
CALL_MINUTES = 30
CHANGEOVER_MINUTES = 15
MIN_NOTICE_DAYS = 2
MAX_DAYS_AHEAD = 28
MAX_VISITORS = 3
MAX_ADULTS = 3
ADULT_AGE = 18
JOIN_WINDOW_MINUTES = 10
REQUEST_RESPONSE_HOURS = 48
FACE_MATCH_TOLERANCE = 0.6
FACE_CHECKS_TO_CONFIRM = 2
FACE_AUTO_RESUME_SECONDS = 10
FACE_CHECKS_PER_SECOND = 2.0
# Children younger than this are not face-checked on calls (their lead visitor must
# stay in view); 0 checks every child. Issue 16.
FACE_CHECK_CHILDREN_UNDER = 12
TIME_ZONE = "Europe/London"
