"""Settings for every environment, read from environment variables.

Without DATABASE_URL and REDIS_URL the embedded defaults apply (SQLite under var/,
in-memory channel layer, local-memory cache, eager Celery, console email), so a fresh
clone runs with `make run`. DEBUG=false switches on the production settings.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from purplevisits.env import (
    env_bool,
    env_int,
    env_json,
    env_list,
    env_str,
    parse_database_url,
    parse_redis_url,
    socket_sources,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
TESTING = "pytest" in sys.modules or env_bool("TESTING", False)

DEBUG = env_bool("DEBUG", True)

_DEV_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production-0123456789"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY if DEBUG else None)
if not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters when DEBUG=false."
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG=false.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "purplevisits.apps.PurpleVisitsConfig",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "establishments",
    "audit",
    "identity",
    "bookings",
    "calls",
    "monitoring",
]

MIDDLEWARE = [
    "purplevisits.metrics.RequestLatencyMiddleware",  # /metrics: request latency
    "purplevisits.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Cymraeg or English: the visitor's choice (cookie), then the browser's language;
    # Welsh first in a Welsh establishment's portal (purplevisits/i18n.py).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "purplevisits.middleware.SessionLifetimeMiddleware",
    "identity.middleware.StaffMfaRequiredMiddleware",
]

ROOT_URLCONF = "purplevisits.urls"
WSGI_APPLICATION = "purplevisits.wsgi.application"
ASGI_APPLICATION = "purplevisits.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "purplevisits.context_processors.service",
            ],
        },
    },
]

FORM_RENDERER = "purplevisits.forms.SiteFormRenderer"  # one form pattern site-wide (issue 17)

# --- Database -----------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": parse_database_url("DATABASE_URL", DATABASE_URL, base_dir=BASE_DIR)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
_test_name = env_str("TEST_DATABASE_NAME", "") or None
if _test_name is None and DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory: browser tests run the server in another process.
    _test_name = str(VAR_DIR / f"test-{os.getpid()}.sqlite3")
DATABASES["default"]["TEST"] = {"NAME": _test_name}
# --- harden: bounded PostgreSQL connections -------------------------------------------
# Under Django's own ASGI handler every concurrent request ran its view in its own
# thread with its own connection: 200 concurrent users opened > 100 connections and
# PostgreSQL refused them ("too many clients", 29 % errors in bench/load.py). Requests
# now run on WEB_THREADS threads (purplevisits/asgi_http.py), WebSocket consumers on
# their own. DATABASE_POOL_SIZE=N shares a
# psycopg pool of at most N connections per process (default 10; 0 turns it off);
# requests wait up to DATABASE_POOL_TIMEOUT seconds for one instead of failing. A pool
# also saves a PostgreSQL connection (a forked backend) per request. The test suite
# keeps Django's own per-thread connections unless it is asked for a pool.
DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", 0 if TESTING else 10, minimum=0)
if DATABASE_POOL_SIZE and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": min(2, DATABASE_POOL_SIZE),
        "max_size": DATABASE_POOL_SIZE,
        "timeout": env_int("DATABASE_POOL_TIMEOUT", 20, minimum=1),
    }
# Server-side binding and prepared statements. Every page repeats the same few queries,
# and PostgreSQL spent more time planning them than running them (the booking page's
# connection read: 0.34 ms planning, 0.11 ms running). With server-side binding psycopg
# prepares a statement once it has run DATABASE_PREPARE_THRESHOLD times on a connection
# (default 5; 0 turns both off): PostgreSQL's CPU per booking request fell from 1.9 to
# 1.0-1.2 ms (bench/booking_rush.py). Restart the web processes after a migration that
# changes the columns of a table (a prepared statement's result cannot change type).
DATABASE_PREPARE_THRESHOLD = env_int("DATABASE_PREPARE_THRESHOLD", 5, minimum=0)
if DATABASE_PREPARE_THRESHOLD and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = DATABASE_PREPARE_THRESHOLD
# Threads per web process running the (synchronous) middleware and views of HTTP
# requests (purplevisits/asgi_http.py); more requests than this wait in arrival order.
# Python runs one thread at a time, so more threads only help while others wait on the
# database: a few per process, no more than the database pool.
WEB_THREADS = env_int("WEB_THREADS", 4, minimum=1, maximum=256)
# How long the booking pages may use a cached copy of an establishment's sessions,
# terminals and blocked dates (establishments/schedule.py); changes clear it at once.
SCHEDULE_CACHE_SECONDS = env_int("SCHEDULE_CACHE_SECONDS", 60, minimum=0, maximum=3600)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, Celery broker ----------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    REDIS_URL = parse_redis_url("REDIS_URL", REDIS_URL)
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "pv"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                "prefix": env_str("CHANNEL_PREFIX", "pv-asgi"),
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL or TESTING)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# --- harden: a task of a worker that died is delivered again -----------------------------
# With acks_late on Redis, a message taken by a worker that is killed stays unacknowledged
# until the visibility timeout (kombu's default: one hour) and is only then given to
# another worker (measured in bench/faults.py celery). Keep it above the longest task and
# the longest retry countdown (40 s), well below an hour.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 300, minimum=10)
}
CELERY_TIMEZONE = "Europe/London"
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}

# --- Auth -----------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
if TESTING:
    # Hashing strength is not under test; a fast hasher keeps the suite quick.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_URL_PATH = "/accounts/login/"
# Staff sessions end after 15 idle minutes; every session after 12 hours at most.
STAFF_IDLE_SECONDS = env_int("STAFF_IDLE_SECONDS", 15 * 60, minimum=60)
SESSION_ABSOLUTE_SECONDS = env_int("SESSION_ABSOLUTE_SECONDS", 12 * 3600, minimum=300)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_SECONDS
LOGIN_REDIRECT_URL = "home"  # identity.adapter sends staff and visitors on from there
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Purple Visits"
# Staff sessions count as two-factor passed only after the TOTP step of that session
# (purplevisits/session_rules.py). "Trust this browser" would skip the step: keep it off.
MFA_TRUST_ENABLED = False
# --- harden: proxies ------------------------------------------------------------------
# How many proxies the operator runs in front of the web processes. 0 (the default):
# X-Forwarded-For and X-Forwarded-Proto are ignored, whoever sends them, and the client
# address is the socket's. N >= 1: the address N hops from the end of X-Forwarded-For
# is the client's (allauth's rate limits and the sign-in delays count per address),
# and X-Forwarded-Proto: https from the nearest proxy marks the request secure.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=10)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT
if TRUSTED_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Internationalisation -----------------------------------------------------------
LANGUAGE_CODE = "en-gb"
LANGUAGES = [("en-gb", "English"), ("cy", "Cymraeg")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The switch in the header remembers the choice for a year (Django's set_language).
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "Europe/London"
USE_I18N = True
USE_TZ = True

# --- Static and private files ---------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Uploaded identity documents and evidence are never under a public URL: they are
# stored here and served only through views that check who is asking.
PRIVATE_MEDIA_ROOT = Path(env_str("PRIVATE_MEDIA_ROOT", str(VAR_DIR / "private")))
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": PRIVATE_MEDIA_ROOT, "base_url": None},
    },
    # Production: hashed names from the manifest that `collectstatic` writes at image
    # build (deploy/entrypoint.sh collectstatic), compressed copies beside them. With
    # DEBUG Django's {% static %} gives plain names (HashedFilesMixin.url), so the
    # manifest is not needed there.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "purplevisits.storage.StaticFilesStorage",
    },
}
# whitenoise serves /static/ from every web process (STATIC_ROOT; with DEBUG also the
# source folders, re-read on every request, like runserver). SERVE_STATIC=false leaves
# /static/ to a proxy in front.
SERVE_STATIC = env_bool("SERVE_STATIC", True)
if SERVE_STATIC:
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Form fields other than files: the largest form here is a few KB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
# Bodies and uploaded files past this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
# Whole request bodies (purplevisits/body_limit.py answers 413 before reading more): two
# photos of up to 10 MB each plus the form. Set the proxy's body limit to the same value.
REQUEST_BODY_MAX_BYTES = env_int(
    "REQUEST_BODY_MAX_BYTES", 21 * 1024 * 1024, minimum=1024 * 1024, maximum=1024 * 1024 * 1024
)

# --- Email ----------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str(
    "DEFAULT_FROM_EMAIL", "Purple Visits <no-reply@purplevisits.localhost>"
)

# --- Calls ----------------------------------------------------------------------------
ICE_SERVERS = env_json("ICE_SERVERS", [])
if not isinstance(ICE_SERVERS, list):
    raise ImproperlyConfigured("ICE_SERVERS must be a JSON list of {urls, username, credential}.")
RELAY_IN_PROCESS = env_bool("RELAY_IN_PROCESS", not REDIS_URL)
# Relay processes `manage.py runrelay` starts on this host; 0: one per usable core.
RELAY_PROCESSES = env_int("RELAY_PROCESSES", 0, minimum=0, maximum=256)

# --- Security -------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_COOKIE_HTTPONLY = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "media-src": ["'self'", "blob:"],
        "connect-src": ["'self'", *socket_sources(ALLOWED_HOSTS, debug=DEBUG)],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

LOG_FORMAT = env_str("LOG_FORMAT", "plain" if DEBUG else "json")
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use plain or json.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "purplevisits.observability.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "purplevisits.observability.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # aioice logs every ICE candidate check at INFO: noise at any scale.
        "aioice": {"level": "WARNING"},
        "aiortc": {"level": "WARNING"},
    },
}

SERVICE_NAME = "Purple Visits"

# --- Site address, health, metrics ------------------------------------------------------
# The public address of the site (scheme, host, port if any; no path): links in emails
# sent outside any request (bookings, reminders) and the host the container
# healthchecks ask for. Required with DEBUG=false; `make run` sets it from HOST/PORT.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000" if DEBUG else None).rstrip("/")
_site = urlsplit(SITE_URL)
if _site.scheme not in {"http", "https"} or not _site.hostname or _site.path or _site.query:
    raise ImproperlyConfigured(
        f"SITE_URL={SITE_URL!r} must be the site's address, such as https://visits.example.org"
    )
SITE_HOST = _site.hostname
# The container healthcheck (manage.py healthcheck web) asks plain HTTP on loopback.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# /metrics (Prometheus text format) answers only with "Authorization: Bearer <token>";
# unset, it answers 404.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
if METRICS_TOKEN and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 32 characters.")
# How often each process adds its request and face-check figures to Redis for /metrics.
METRICS_FLUSH_SECONDS = 5.0
# TURN (coturn with use-auth-secret, the TURN REST API): each participant gets a
# username and password valid for the call (calls/turn.py). TURN_URLS: comma-separated
# turn:/turns: URLs; TURN_SECRET: coturn's static-auth-secret.
TURN_URLS = env_list("TURN_URLS", [])
TURN_SECRET = env_str("TURN_SECRET", "")
if TURN_URLS and len(TURN_SECRET) < 32:
    raise ImproperlyConfigured("TURN_SECRET must be set (at least 32 characters) with TURN_URLS.")
if any(not url.startswith(("turn:", "turns:")) for url in TURN_URLS):
    raise ImproperlyConfigured("TURN_URLS must be turn: or turns: URLs, comma-separated.")

# --- bookings ---
# Links in booking emails (sent by workers, outside any request): SITE_URL.
BOOKINGS_SITE_URL = SITE_URL
CELERY_BEAT_SCHEDULE["bookings-send-reminders"] = {
    "task": "bookings.tasks.send_booking_reminders",
    "schedule": 300.0,
}
CELERY_BEAT_SCHEDULE["bookings-lapse-requests"] = {
    "task": "bookings.tasks.lapse_booking_requests",
    "schedule": 300.0,
}

# --- identity -------------------------------------------------------------------------
# Face encodings are encrypted with this Fernet key. The development key below is only
# accepted with DEBUG on; production must set its own (see README).
_DEV_FACE_ENCRYPTION_KEY = "ZGV2ZWxvcG1lbnQtb25seS1mYWNlLWtleS0wMDAwMDA="
FACE_ENCRYPTION_KEY = env_str("FACE_ENCRYPTION_KEY", _DEV_FACE_ENCRYPTION_KEY if DEBUG else None)
if not DEBUG and FACE_ENCRYPTION_KEY == _DEV_FACE_ENCRYPTION_KEY:
    raise ImproperlyConfigured("FACE_ENCRYPTION_KEY must be set to your own key when DEBUG=false.")
try:
    from cryptography.fernet import Fernet as _Fernet

    _Fernet(FACE_ENCRYPTION_KEY.encode())
except ValueError:
    raise ImproperlyConfigured(
        "FACE_ENCRYPTION_KEY is not a Fernet key (32 url-safe base64-encoded bytes)."
    ) from None

ACCOUNT_ADAPTER = "identity.adapter.AccountAdapter"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Purple Visits] "
ACCOUNT_EMAIL_VERIFICATION_BY_CODE_ENABLED = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
# allauth counts attempts in the default cache, which is Redis when REDIS_URL is set,
# so the limits hold across every web process. Wrong passwords are slowed per account
# *and* address by identity/login_throttle.py (identity.adapter), not locked per account;
# "login_failed" below now limits the two-factor code step (key: the user).
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/300s/key",
    "signup": "10/h/ip",
    "confirm_email": "1/180s/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "reauthenticate": "10/m/user",
    "change_password": "5/m/user",
}
MFA_RECOVERY_CODE_COUNT = 10
MFA_TOTP_TOLERANCE = 1
# Pages a staff member without two-factor authentication may still open.
IDENTITY_MFA_EXEMPT_PREFIXES = [
    "/accounts/2fa/",
    "/accounts/logout/",
    "/accounts/reauthenticate/",
    "/accounts/confirm-email/",
    "/healthz",
    "/" + STATIC_URL.lstrip("/"),
    # The pages above need their JavaScript messages and the language switch.
    "/jsi18n/",
    "/i18n/setlang/",
]
# Consent notice shown when a visitor agrees to face matching; bump when its text changes.
IDENTITY_CONSENT_NOTICE_VERSION = "2020-07"
IDENTITY_MAX_PENDING_CONNECTIONS = 6
# Connection requests whose details match no prisoner, per account and per prison
# number, in 24 hours; past it every request is refused until the window ends.
IDENTITY_CONNECTION_FAILURES_PER_DAY = env_int(
    "IDENTITY_CONNECTION_FAILURES_PER_DAY", 5, minimum=1, maximum=100
)
IDENTITY_UPLOAD_MAX_BYTES = 10 * 1024 * 1024
# What a phone camera gives: 12 MP usually, 24 MP on the newest (5712x4284 = 24.5 MP).
# Checked from the header before any pixel is decoded; it bounds the decoding cost of a
# small, highly compressed PNG (a 6000x6000 one of 105 KB took 2-4 s before).
IDENTITY_UPLOAD_MAX_PIXELS = 25_000_000
IDENTITY_UPLOAD_MIN_SIDE = 200
IDENTITY_ID_IMAGE_RETENTION_DAYS = 30
IDENTITY_ENCODING_RETENTION_DAYS = 365
# The visitor's own frames from the pre-call check on a call's join page, as a third
# face enrolment (issue 16; identity.services.precall_frames_submit). The page sends
# IDENTITY_PRECALL_FRAMES frames (the tick box says how many); the endpoint takes 1 to
# IDENTITY_PRECALL_MAX_FRAMES of at most IDENTITY_PRECALL_FRAME_MAX_BYTES each (a
# 640 px JPEG at quality 0.85 is 30-80 KB), at most IDENTITY_PRECALL_CHECKS_PER_HOUR
# times per visitor. An enrolment is kept only when at least
# IDENTITY_PRECALL_MIN_FRAMES frames were sent and every one shows one face within
# the visitor's tolerance of their selfie, and is deleted after
# IDENTITY_PRECALL_ENCODING_DAYS (a webcam and a room change; a new check replaces it).
IDENTITY_PRECALL_FRAMES = 3
IDENTITY_PRECALL_MIN_FRAMES = 3
IDENTITY_PRECALL_MAX_FRAMES = 5
IDENTITY_PRECALL_FRAME_MAX_BYTES = 300 * 1024
IDENTITY_PRECALL_CHECKS_PER_HOUR = 4
IDENTITY_PRECALL_ENCODING_DAYS = 90
# Uploads of two photos at up to 10 MB each stream to temporary files past 2.5 MB.
DATA_UPLOAD_MAX_NUMBER_FILES = 10

CELERY_BEAT_SCHEDULE["identity-delete-old-id-images"] = {
    "task": "identity.tasks.delete_expired_id_images",
    "schedule": 24 * 60 * 60,
}
CELERY_BEAT_SCHEDULE["identity-delete-stale-encodings"] = {
    "task": "identity.tasks.delete_stale_encodings",
    "schedule": 24 * 60 * 60,
}
# Pre-call frames whose face check never ran (a lost task): deleted after an hour.
CELERY_BEAT_SCHEDULE["identity-delete-leftover-precall-frames"] = {
    "task": "identity.tasks.delete_leftover_precall_frames",
    "schedule": 60 * 60,
}
# --- face checks ----------------------------------------------------------------------
# Worker processes of each relay process's face-check pool (dlib holds the GIL, so
# processes, not threads). Default: one per core.
# Worker processes of each relay process's face-check pool; 0: the cores shared out
# between the host's relay processes (calls/facecheck/pool.py).
FACE_CHECK_WORKERS = env_int("FACE_CHECK_WORKERS", 0, minimum=0, maximum=256)
# Width a frame is scaled to (up or down) for face detection (HOG, no upsampling).
# dlib finds faces from about 80 px wide at this width: 800 finds a 60 px face in a
# 640-wide frame (a child sitting back, a stranger at the door) and a 40 px face in a
# 320-wide phone stream, for ~30 ms of CPU (480: ~12 ms, faces from ~110 px only).
# Measured on bench/face_eval.py: see docs/face-checks.md.
FACE_CHECK_DETECT_WIDTH = env_int("FACE_CHECK_DETECT_WIDTH", 800, minimum=160, maximum=1920)

# --- calls ----------------------------------------------------------------------------
# Dotted paths of callables run with each new RelayCall inside a relay process (the
# face checks attach their video observers this way; see docs/signalling.md).
RELAY_CALL_HOOKS = env_list("RELAY_CALL_HOOKS", ["calls.faces.attach_face_checks"])
RELAY_REGISTRY_KEY = env_str("RELAY_REGISTRY_KEY", "pv:relays")
# A participant whose socket drops and who is not back within this many seconds (a page
# reload or a network blip rejoins sooner) raises a "lost connection" alert for staff.
CALL_DROP_ALERT_GRACE_SECONDS = env_int("CALL_DROP_ALERT_GRACE_SECONDS", 20, minimum=0, maximum=600)
MIDDLEWARE += ["calls.middleware.TerminalAccountMiddleware"]

# --- face checks in the relay ---------------------------------------------------------
# On by default: every call in a relay process gets face checks (calls/faces.py, listed
# in RELAY_CALL_HOOKS). An operator can turn them off with FACE_CHECKS_ENABLED=false.
FACE_CHECKS_ENABLED = env_bool("FACE_CHECKS_ENABLED", True)
# Evidence snapshots of alerts are deleted after this many days (monitoring.tasks).
ALERT_SNAPSHOT_RETENTION_DAYS = env_int(
    "ALERT_SNAPSHOT_RETENTION_DAYS", 90, minimum=1, maximum=3650
)
CELERY_BEAT_SCHEDULE["monitoring-delete-old-snapshots"] = {
    "task": "monitoring.tasks.delete_old_alert_snapshots",
    "schedule": 24 * 60 * 60,
}
