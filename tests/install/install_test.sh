#!/usr/bin/env bash
# `meson install --destdir` into a scratch directory, then a tiny host
# (host.c) built against the installed tree with pkg-config only, linked,
# and run. Checks the layout docs/install.md promises.
# usage: install_test.sh BUILD_ROOT PREFIX LIBDIR BINDIR MANDIR CC HOST_C
set -euo pipefail
build_root=$1 prefix=$2 libdir=$3 bindir=$4 mandir=$5 cc=$6 host_c=$7
work=$(mktemp -d "${TMPDIR:-/tmp}/install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest="$work/dest"

meson install -C "$build_root" --no-rebuild --destdir "$dest" --quiet
root="$dest$prefix"
lib="$dest$libdir"
fail() { echo "install_test: $*" >&2; exit 1; }

# The layout.
for f in "$root/include/quiesce/quiesce.h" "$lib/pkgconfig/quiesce.pc" \
         "$lib/libquiesce.so" "$lib/libquiesce.so.0" \
         "$lib/quiesce/libquiesce_preload.so" "$dest$bindir/quiescectl" \
         "$dest$mandir/man1/quiescectl.1" "$dest$mandir/man7/quiesce.7" \
         "$root/share/doc/quiesce/README.md" \
         "$root/share/bash-completion/completions/quiescectl"; do
  [ -e "$f" ] || fail "not installed: ${f#"$dest"}"
done
soname=$(readelf -d "$lib/libquiesce.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libquiesce.so.0" ] || fail "SONAME is '$soname', want libquiesce.so.0"
[ "$(readlink "$lib/libquiesce.so")" = "libquiesce.so.0" ] ||
  fail "libquiesce.so is not a link to the SONAME"
for f in "$lib/libquiesce.so.0" "$lib/quiesce/libquiesce_preload.so" \
         "$dest$bindir/quiescectl"; do
  if readelf -d "$f" | grep -qE '(RPATH|RUNPATH).*'"$build_root"; then
    fail "${f#"$dest"} keeps a run path into the build tree"
  fi
done
env -u LD_LIBRARY_PATH "$dest$bindir/quiescectl" --version

# A host that knows quiesce only through pkg-config.
export PKG_CONFIG_PATH="$lib/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$dest"
flags=$(pkg-config --cflags --libs quiesce)
echo "pkg-config --cflags --libs quiesce: $flags"
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH
sqlite_flags=$(pkg-config --cflags --libs sqlite3)
# shellcheck disable=SC2086  # flags are words
$cc -std=c11 -Wall -Werror -o "$work/host" "$host_c" $flags $sqlite_flags
LD_LIBRARY_PATH="$lib" "$work/host" "$work/app.db"
ldd_line=$(LD_LIBRARY_PATH="$lib" ldd "$work/host" | grep libquiesce)
case "$ldd_line" in
  *"$lib/libquiesce.so.0"*) ;;
  *) fail "the host did not load the installed library: $ldd_line" ;;
esac
echo "install_test: ok"
