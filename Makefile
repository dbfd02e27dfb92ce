# `make run` and `make test` work on a machine with only Python 3.11, make and git.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# Links in emails under `make run` (settings.SITE_URL).
SITE_URL ?= http://$(HOST):$(PORT)

.PHONY: help setup run test lint bench browser proxy axe lock clean

help:
	@echo "make run    set up and start the service with demo data on http://$(HOST):$(PORT)"
	@echo "make test   set up and run the whole test suite"
	@echo "make lint   ruff and mypy"
	@echo "make bench  run the benchmarks in bench/ and print their figures"

# requirements.lock: what the service runs (the image installs only it);
# requirements-dev.lock: tests and linters.
$(STAMP): requirements.lock requirements-dev.lock requirements-nodeps.txt pyproject.toml deploy/dlib.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock -r requirements-dev.lock
	# face_recognition without its `dlib` requirement: dlib comes from dlib-bin, then
	# (deploy/dlib.sh, once per machine, cached in var/wheels) dlib built here with
	# OpenBLAS: face checks 2-4x cheaper. DLIB_FROM_SOURCE=0 keeps dlib-bin.
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	sh deploy/dlib.sh $(BIN)/python var/wheels
	$(BIN)/python -c "import django, channels, aiortc, face_recognition"
	touch $(STAMP)

setup: $(STAMP)
	@mkdir -p var

# Debian's Chromium and ffmpeg for the browser tests (no browser download), and GNU
# gettext for the check that every string has its Welsh (tests/test_i18n.py).
browser:
	@if command -v chromium >/dev/null && command -v ffmpeg >/dev/null && command -v msgmerge >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing chromium, ffmpeg and gettext with apt-get…"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ffmpeg gettext >/dev/null; \
	else echo "chromium/ffmpeg/gettext missing and not root: browser and translation tests will be skipped"; fi

# Debian's caddy (the TLS proxy of tests/production) and certutil (to trust its test CA).
proxy:
	@if command -v caddy >/dev/null && command -v certutil >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing caddy and libnss3-tools with apt-get…"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq caddy libnss3-tools >/dev/null; \
	else echo "caddy/certutil missing and not root: the production test will be skipped"; fi

# axe-core from the npm registry, at the version pinned in tests/e2e/axe/package-lock.json,
# for the accessibility test (tests/e2e/test_accessibility.py).
AXE := tests/e2e/axe
axe:
	@if [ -f $(AXE)/node_modules/axe-core/axe.min.js ] && [ $(AXE)/node_modules/.package-lock.json -nt $(AXE)/package-lock.json ]; then :; \
	elif command -v npm >/dev/null; then \
		echo "Installing axe-core with npm ci…"; \
		npm ci --prefix $(AXE) --ignore-scripts --no-audit --no-fund --silent; \
	else echo "npm missing: the accessibility test will be skipped"; fi

run: export SITE_URL := $(SITE_URL)
run: setup
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py load_establishments
	$(BIN)/python manage.py seed_demo
	@echo "Serving on $(SITE_URL)/ (Ctrl-C to stop)"
	$(BIN)/daphne -b $(HOST) -p $(PORT) purplevisits.asgi:application

test: setup browser proxy axe
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy .

bench: setup
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

lock: setup
	$(BIN)/python deploy/lock.py

clean:
	rm -rf $(VENV) var/db.sqlite3 .pytest_cache .mypy_cache .ruff_cache
