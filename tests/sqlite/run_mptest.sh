#!/usr/bin/env bash
# Runs one of SQLite's mptest scripts through the quiesce shim and fails
# unless mptest ran at least one test and reported zero errors.
#   run_mptest.sh MPTEST MPTEST_DIR SCRIPT [MPTEST OPTIONS...]
# The environment must register the shim (QUIESCE_VFS_NAME=unix
# QUIESCE_DEFAULT=1); the script first checks that the connection's VFS is
# the shim, so a run on the bare VFS cannot pass.
set -euo pipefail
mptest=$(realpath "$1"); src=$2; script=$3; shift 3
work=$(mktemp -d "${TMPDIR:-/tmp}/mptest.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The scripts --source each other by relative path: run from a copy.
cp "$src"/*.test "$src"/*.subtest "$work"/
# config01.test keeps its whole body for "--if vfsname() GLOB 'unix'" and
# has no --endif: under the shim the name is "quiesce/unix", and nothing
# would run. The condition means "the unix VFS", which is what the shim
# wraps.
sed -i "s|^--if vfsname() GLOB 'unix'\$|--if vfsname() GLOB '*unix'|" "$work/config01.test"
cat > "$work/through-shim.test" <<SCRIPT
SELECT vfsname();
--match quiesce/unix
--source $script
SCRIPT

cd "$work"
log=$work/mptest.log
status=0
"$mptest" "$work/test.db" --quiet "$@" through-shim.test > "$log" 2>&1 || status=$?
cat "$log"
summary=$(grep -a '^Summary: ' "$log" || true)
if [[ $status -ne 0 || ! $summary =~ ^Summary:\ 0\ errors\ out\ of\ ([0-9]+)\ tests$ ]] ||
   [[ ${BASH_REMATCH[1]} -eq 0 ]]; then
  echo "run_mptest: FAILED (exit status $status, '${summary:-no summary}')"
  exit 1
fi
echo "run_mptest: $summary"
