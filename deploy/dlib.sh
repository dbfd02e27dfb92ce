#!/bin/sh
# Replace the prebuilt dlib-bin wheel (built without BLAS, for any x86-64) with dlib
# built here from its source release, linked with OpenBLAS and compiled for this CPU's
# instructions. Measured on the 2-core development machine (CPU ms, one thread):
# one face encoding 78 -> 17, HOG detection at 800 px 81 -> 66, the CNN detector on a
# crop 93 -> 26 (docs/face-checks.md, "Cost").
#
#   deploy/dlib.sh PYTHON [WHEEL_DIR]
#
# PYTHON is the virtualenv's python; the built wheel is kept in WHEEL_DIR (default
# var/wheels) so a new virtualenv does not build it again. It takes about 6 minutes on
# 2 cores, once. Nothing here is fatal: without a compiler, cmake's wheel, OpenBLAS
# (installed with apt-get when run as root) or on a build error, dlib-bin stays and the
# face checks work as before, only slower. DLIB_FROM_SOURCE=0 skips it;
# DLIB_CFLAGS sets the compiler flags (default below).
set -u
PY=$1
WHEELS=${2:-var/wheels}
VERSION=19.24.6
# x86-64-v3 (AVX2, FMA: any x86 server CPU since about 2015) measured as fast as
# -march=native here, and the wheel then runs on any such machine.
if grep -q ' avx2' /proc/cpuinfo 2>/dev/null && grep -q ' fma' /proc/cpuinfo; then
    DEFAULT="-O3 -march=x86-64-v3"
else
    DEFAULT="-O3 -march=native"
fi
FLAGS=${DLIB_CFLAGS:-$DEFAULT}

if [ "${DLIB_FROM_SOURCE:-1}" = 0 ]; then exit 0; fi
if "$PY" -c "import dlib, sys; sys.exit(0 if dlib.DLIB_USE_BLAS else 1)" 2>/dev/null; then
    exit 0  # already built with BLAS
fi
have() { ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so ' && command -v cmake >/dev/null \
    && command -v c++ >/dev/null; }
if ! have && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing OpenBLAS, cmake and g++ with apt-get (to build dlib)…"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq libopenblas-dev cmake g++ >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 \
             && apt-get install -y -qq libopenblas-dev cmake g++ >/dev/null 2>&1; }
fi
if ! have; then
    echo "dlib: no OpenBLAS, cmake or g++; keeping the prebuilt dlib-bin (slower face checks)."
    exit 0
fi
# The wheel depends on the flags and, for -march=native, on this CPU.
case "$FLAGS" in
    *native*) CPU=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null) ;;
    *) CPU= ;;
esac
KEY=$(echo "$VERSION $FLAGS $CPU" | cksum | cut -d' ' -f1)
DIR="$WHEELS/dlib-$VERSION-$KEY"
if ! ls "$DIR"/dlib-*.whl >/dev/null 2>&1; then
    echo "Building dlib $VERSION with OpenBLAS ($FLAGS), once: about 6 minutes on 2 cores…"
    mkdir -p "$DIR.tmp"
    if ! CFLAGS="$FLAGS" CXXFLAGS="$FLAGS" "$PY" -m pip wheel --quiet --no-deps \
        --no-binary dlib "dlib==$VERSION" -w "$DIR.tmp" >"$DIR.log" 2>&1; then
        echo "dlib: the build failed (see $DIR.log); keeping the prebuilt dlib-bin."
        rm -rf "$DIR.tmp"
        exit 0
    fi
    rm -rf "$DIR" && mv "$DIR.tmp" "$DIR"
fi
"$PY" -m pip uninstall --quiet --yes dlib-bin
if "$PY" -m pip install --quiet --no-deps --force-reinstall "$DIR"/dlib-*.whl \
    && "$PY" -c "import dlib, numpy, face_recognition; assert dlib.DLIB_USE_BLAS
face_recognition.face_encodings(numpy.zeros((120, 160, 3), numpy.uint8), [(10, 110, 110, 10)])"
then
    echo "dlib $VERSION with OpenBLAS installed."
else
    echo "dlib: the built wheel did not load; back to the prebuilt dlib-bin."
    "$PY" -m pip uninstall --quiet --yes dlib
    "$PY" -m pip install --quiet --no-deps --force-reinstall "dlib-bin==$VERSION"
fi
