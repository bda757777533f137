#!/usr/bin/env bash
# Builds SQLite's testfixture with the quiesce shim linked in.
#   build_testfixture.sh SQLITE_SRC WORK_DIR OUTPUT LIBRARY...
# SQLITE_SRC: SQLite's source tree; WORK_DIR: a scratch directory for
# SQLite's configure and objects (kept between runs, so a changed shim costs
# a relink only); OUTPUT: where the binary goes; LIBRARY...: the static
# libraries holding quiesce_testfixture_init and the shim. Logs stay in
# WORK_DIR (configure.log, make.log) and their tail is shown on failure.
set -euo pipefail
src=$(realpath "$1"); work=$2; out=$(realpath -m "$3"); shift 3
libs=()
for lib in "$@"; do libs+=("$(realpath "$lib")"); done
here=$(dirname "$(realpath "$0")")
mkdir -p "$work"
cd "$work"

fail() { echo "build_testfixture: $1 failed; last lines of $work/$2:" >&2
         tail -n 30 "$2" >&2; exit 1; }

if [ ! -f Makefile ]; then
  # -O1: the tests are I/O-bound and -O2 takes twice as long to compile
  # sqlite3.c on these machines.
  CFLAGS="-O1 -g" "$src/configure" --disable-shared --disable-readline \
    --with-tcl=/usr/lib/tcl8.6 > configure.log 2>&1 || fail configure configure.log
fi
make -f "$here/testfixture.mk" -j"${QUIESCE_MAKE_JOBS:-1}" \
  QUIESCE_LIBS="${libs[*]}" testfixture-quiesce > make.log 2>&1 || fail make make.log
# A rename, not a copy over: a test may be running the old binary.
cp testfixture-quiesce "$out.tmp"
mv -f "$out.tmp" "$out"
