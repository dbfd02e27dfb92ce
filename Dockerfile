# One image for every process type (web, relay, worker, beat); the command differs.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    VAR_DIR=/var/lib/purplevisits
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 libopenblas0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock requirements-nodeps.txt ./
RUN pip install -r requirements.lock && pip install --no-deps -r requirements-nodeps.txt
COPY . .
RUN useradd --system --home /app purplevisits && mkdir -p $VAR_DIR && chown purplevisits $VAR_DIR \
    && DEBUG=true python manage.py collectstatic --noinput
USER purplevisits
EXPOSE 8000
CMD ["daphne", "--no-server-name", "-b", "0.0.0.0", "-p", "8000", "purplevisits.asgi:application"]
