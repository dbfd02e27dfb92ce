#!/bin/sh
# The one definition of every process of the service. docker-compose.yml runs the image
# with one of these names (the Dockerfile's ENTRYPOINT); tests/production runs the same
# names from a checkout, so the two cannot drift apart.
#
#   web            daphne: HTTP and WebSocket on $WEB_BIND:$WEB_PORT (0.0.0.0:8000)
#   relay          the media relays of this host: $RELAY_PROCESSES processes (default
#                  one per core) named $RELAY_ID-0, $RELAY_ID-1, … ($RELAY_ID if one)
#   worker         the Celery worker
#   beat           Celery beat (exactly one)
#   migrate        database migrations: a one-off job before starting a new version
#   collectstatic  hashed static files into $VAR_DIR/staticfiles (at image build)
#   healthcheck    web|relay|worker|beat: exit 0 when that process answers
#   manage         any other manage.py command
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"

command="${1:-web}"
[ "$#" -gt 0 ] && shift
case "$command" in
  web)
    exec daphne --no-server-name -b "${WEB_BIND:-0.0.0.0}" -p "${WEB_PORT:-8000}" \
      purplevisits.asgi:application
    ;;
  relay)
    exec "$PYTHON" manage.py runrelay --relay-id "${RELAY_ID:-relay-$(hostname)}"
    ;;
  worker)
    exec celery -A purplevisits worker --loglevel="${CELERY_LOG_LEVEL:-INFO}" \
      --concurrency="${WORKER_CONCURRENCY:-2}"
    ;;
  beat)
    exec celery -A purplevisits beat --loglevel="${CELERY_LOG_LEVEL:-INFO}" \
      --scheduler purplevisits.beat:HeartbeatScheduler \
      --schedule "${VAR_DIR:-var}/celerybeat-schedule"
    ;;
  migrate)
    exec "$PYTHON" manage.py migrate --noinput
    ;;
  collectstatic)
    # Production settings need secrets; at build time none exist. These throw-away
    # values live only in this command's environment, never in the image.
    SECRET_KEY="$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(64))')" \
    FACE_ENCRYPTION_KEY="$("$PYTHON" -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')" \
    DEBUG=false ALLOWED_HOSTS=build.invalid SITE_URL=https://build.invalid \
      exec "$PYTHON" manage.py collectstatic --noinput --verbosity 0
    ;;
  healthcheck)
    exec "$PYTHON" manage.py healthcheck "$@"
    ;;
  manage)
    exec "$PYTHON" manage.py "$@"
    ;;
  *)
    echo "usage: $0 web|relay|worker|beat|migrate|collectstatic|healthcheck PROCESS|manage ARGS" >&2
    exit 64
    ;;
esac
