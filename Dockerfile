# One image for every process type (web, relay, worker, beat, migrate); the argument to
# deploy/entrypoint.sh chooses which (docker-compose.yml).

# dlib built with OpenBLAS for x86-64-v3 (deploy/dlib.sh explains; the prebuilt dlib-bin
# has no BLAS: a face encoding 78 ms instead of 17). Compilers stay in this stage.
FROM python:3.11.13-slim-bookworm AS dlib
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends g++ cmake libopenblas-dev \
    && rm -rf /var/lib/apt/lists/*
RUN CFLAGS="-O3 -march=x86-64-v3" CXXFLAGS="-O3 -march=x86-64-v3" \
    pip wheel --no-cache-dir --no-deps --no-binary dlib dlib==19.24.6 -w /wheels

FROM python:3.11.13-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 VAR_DIR=/var/lib/purplevisits
# Face matching's native libraries (dlib's OpenMP and BLAS).
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 libopenblas0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Runtime dependencies only: tests and linters are in requirements-dev.lock.
COPY requirements.lock requirements-nodeps.txt ./
COPY --from=dlib /wheels /tmp/wheels
RUN pip install --no-cache-dir -r requirements.lock \
    && pip install --no-cache-dir --no-deps -r requirements-nodeps.txt \
    && pip uninstall --yes dlib-bin \
    && pip install --no-cache-dir --no-deps /tmp/wheels/dlib-*.whl \
    && rm -rf /tmp/wheels \
    && python -c "import dlib, face_recognition; assert dlib.DLIB_USE_BLAS"
COPY . .
# The app's user owns the private-media directory (a named volume mounted there takes
# this owner the first time), and nothing else it could change.
RUN groupadd --system --gid 10001 purplevisits \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home purplevisits \
    && mkdir -p "$VAR_DIR/private" \
    && chown -R 10001:10001 "$VAR_DIR" \
    && ./deploy/entrypoint.sh collectstatic
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=15s --start-period=60s --retries=3 \
    CMD ["/app/deploy/entrypoint.sh", "healthcheck", "web"]
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["web"]
