#!/usr/bin/env python3
"""Checks of the LD_PRELOAD library (tools/preload) that need no Firefox:
what it exports and needs, and how it behaves in programs that use a
shared SQLite. QUIESCE_PRELOAD names the library. Python stdlib only; uses
binutils (nm, readelf) and the sqlite3 shell."""

import ctypes
import os
import subprocess
import sys
import tempfile
import unittest

PRELOAD = os.environ.get("QUIESCE_PRELOAD", "")
MOZ_SQLITE = "/usr/lib/firefox-esr/libmozsqlite3.so"


def run(args, env=None, **kwargs):
    full_env = dict(os.environ)
    full_env.pop("QUIESCE_PRELOAD_EXCL_OVER_UNIX", None)
    full_env.update(env or {})
    return subprocess.run(args, env=full_env, capture_output=True, text=True,
                          timeout=60, check=False, **kwargs)


def lines(text):
    return {line for line in text.splitlines() if line}


class Binary(unittest.TestCase):
    """The library as a file: its dynamic symbols and dependencies."""

    def test_exports_only_sqlite3_initialize(self):
        out = run(["nm", "-D", "--defined-only", PRELOAD])
        self.assertEqual(out.returncode, 0, out.stderr)
        exported = {f.split()[2] for f in out.stdout.splitlines()
                    if len(f.split()) == 3 and f.split()[1] in "TDBVWRGi"}
        self.assertEqual(exported, {"sqlite3_initialize"})

    def test_binds_no_sqlite_symbol(self):
        out = run(["nm", "-D", "--undefined-only", PRELOAD])
        self.assertEqual(out.returncode, 0, out.stderr)
        undefined = {f.split()[-1] for f in out.stdout.splitlines()}
        self.assertFalse({s for s in undefined if s.startswith("sqlite3")})

    def test_needs_no_sqlite_and_no_abseil(self):
        out = run(["readelf", "-d", PRELOAD])
        self.assertEqual(out.returncode, 0, out.stderr)
        needed = {line.split("[")[1].rstrip("]") for line in
                  out.stdout.splitlines() if "(NEEDED)" in line}
        self.assertTrue(needed)
        self.assertFalse({n for n in needed if "sqlite" in n or "absl" in n},
                         needed)
        self.assertLessEqual(needed, {"libstdc++.so.6", "libgcc_s.so.1",
                                      "libc.so.6", "libm.so.6",
                                      "ld-linux-x86-64.so.2"})


class Shell(unittest.TestCase):
    """The sqlite3 shell links Debian's SQLite normally: with the preload,
    that SQLite is the host and gets the shim."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.db = os.path.join(self.dir.name, "t.db")

    def tearDown(self):
        self.dir.cleanup()

    def shell(self, target, *commands, env=None, argv0=None):
        full_env = {"LD_PRELOAD": PRELOAD}
        full_env.update(env or {})
        args = ["sqlite3", target, *commands]
        if argv0 is not None:
            args = ["bash", "-c", 'exec -a "$0" "$@"', argv0, *args]
        out = run(args, env=full_env)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.split()

    def vfs_name(self, vfs, **kwargs):
        return self.shell(f"file:{self.db}?vfs={vfs}", "select 1",
                          ".vfsname", **kwargs)[-1]

    def test_every_unix_variant_is_wrapped(self):
        self.assertEqual(self.shell(self.db, "select 1", ".vfsname")[-1],
                         "quiesce/unix")
        for vfs in ("unix", "unix-excl", "unix-none", "unix-dotfile"):
            self.assertEqual(self.vfs_name(vfs), f"quiesce/{vfs}")

    def test_not_installed_in_a_content_process(self):
        self.assertEqual(self.vfs_name("unix", argv0="-contentproc"), "unix")

    def test_bad_configuration_leaves_sqlite_alone(self):
        out = run(["sqlite3", self.db, "select 1", ".vfsname"],
                  env={"LD_PRELOAD": PRELOAD, "QUIESCE_MAX_STALL_MS": "x"})
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.split()[-1], "unix")
        self.assertIn("QUIESCE_MAX_STALL_MS", out.stderr)

    def wal_through_unix_excl(self, env):
        # .shell runs while the connection holds the WAL open. Its output
        # may come before the shell's own (buffered) lines.
        return self.shell(
            f"file:{self.db}?vfs=unix-excl", "pragma journal_mode=wal",
            "create table t(x)", "insert into t values (1)",
            f".shell test -e '{self.db}-shm' && echo shm || echo no-shm",
            env=env)

    def test_unix_excl_keeps_its_wal_index_in_memory(self):
        self.assertIn("no-shm", self.wal_through_unix_excl({}))

    def test_late_mode_attaches_when_the_fifo_is_written(self):
        """Nothing at initialization; the line on the FIFO attaches: files
        opened after go through the shim, the one opened before does not
        until it is reopened."""
        fifo = os.path.join(self.dir.name, "attach")
        other = os.path.join(self.dir.name, "other.db")
        script = "\n".join([
            "create table t(x);",
            ".vfsname",
            f".shell echo attach > '{fifo}'; "
            f"for i in $(seq 200); do test -e '{fifo}.done' && break; "
            "sleep 0.05; done; cat " + f"'{fifo}.done'",
            ".vfsname",
            f".open '{other}'",
            "select 1;",
            ".vfsname",
            f".open '{self.db}'",
            "select count(*) from t;",
            ".vfsname",
        ]) + "\n"
        out = run(["sqlite3", self.db], input=script,
                  env={"LD_PRELOAD": PRELOAD,
                       "QUIESCE_PRELOAD_ATTACH_FIFO": fifo})
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.split()
        self.assertEqual(lines[0], "unix", out.stdout)
        self.assertEqual(lines[1], "0", out.stdout)  # the attach's result
        self.assertIn("unix-excl", lines[2])
        self.assertEqual(lines[3], "unix", "opened before: not wrapped")
        self.assertEqual(lines[4:], ["1", "quiesce/unix", "0", "quiesce/unix"])
        self.assertFalse(os.path.exists(fifo), "the FIFO is removed")

    def test_android_switch_puts_unix_excl_over_unix(self):
        env = {"QUIESCE_PRELOAD_EXCL_OVER_UNIX": "1"}
        self.assertIn("shm", self.wal_through_unix_excl(env))
        self.assertEqual(self.vfs_name("unix-excl", env=env),
                         "quiesce/unix")


# Run in a child: Firefox's SQLite and Debian's (Python's sqlite3 module)
# both loaded RTLD_LOCAL, so each calls sqlite3_initialize through its PLT
# and the preload captures both. Prints the VFS that Firefox's SQLite
# opened a database with, then Debian's version and a value it stored.
TWO_SQLITES = r"""
import ctypes, sqlite3, sys
moz = ctypes.CDLL(sys.argv[1])
db = ctypes.c_void_p()
assert moz.sqlite3_open_v2(sys.argv[2].encode(), ctypes.byref(db), 6, None) == 0
name = ctypes.c_char_p()
SQLITE_FCNTL_VFSNAME = 12
assert moz.sqlite3_file_control(db, b"main", SQLITE_FCNTL_VFSNAME,
                                ctypes.byref(name)) == 0
print(name.value.decode())
con = sqlite3.connect(sys.argv[3])
con.execute("create table t(x)")
con.execute("insert into t values (42)")
con.commit()
print(sqlite3.sqlite_version, con.execute("select x from t").fetchone()[0])
"""


class TwoSqlites(unittest.TestCase):
    """Each SQLite's own calls of sqlite3_initialize reach its own
    definition, and a SQLite that only local modules see is not the host:
    it gets no shim."""

    def test_each_sqlite_gets_its_own_initialize(self):
        if not os.path.exists(MOZ_SQLITE):
            self.skipTest(f"{MOZ_SQLITE} is missing (Debian package firefox-esr)")
        with tempfile.TemporaryDirectory() as d:
            out = run([sys.executable, "-c", TWO_SQLITES, MOZ_SQLITE,
                       os.path.join(d, "moz.db"), os.path.join(d, "deb.db")],
                      env={"LD_PRELOAD": PRELOAD})
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stderr, "")
            moz_vfs, debian_version, value = out.stdout.split()
            self.assertEqual(moz_vfs, "unix")
            self.assertEqual(value, "42")
            moz_version = ctypes.CDLL(MOZ_SQLITE).sqlite3_libversion
            moz_version.restype = ctypes.c_char_p
            self.assertNotEqual(debian_version, moz_version().decode(),
                                "the two SQLites must differ for this test")


if __name__ == "__main__":
    if not os.path.isfile(PRELOAD):
        sys.exit(f"QUIESCE_PRELOAD={PRELOAD!r} is not a file")
    unittest.main()
