#!/usr/bin/env python3
"""quiesce_attach(NULL) from a host that is not C: a Python process whose
SQLite is its sqlite3 module's (Debian's libsqlite3, loaded RTLD_LOCAL, so
not in the global symbol scope: the attach finds it among the loaded
objects). One call, configured by the environment (QUIESCE_SOCKET); a
database opened before is listed as untracked and refused, one opened
after is tracked. LIBQUIESCE names libquiesce.so. Python stdlib only."""

import ctypes
import json
import os
import socket
import sqlite3
import sys
import tempfile
import unittest

LIBQUIESCE = os.environ.get("LIBQUIESCE", "")


def call(path, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(path)
        s.sendall(json.dumps(request).encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            reply += chunk
    return json.loads(reply)


class PythonHost(unittest.TestCase):
    def test_one_call_attaches_a_python_process(self):
        with tempfile.TemporaryDirectory() as d:
            before_path = os.path.join(d, "before.db")
            after_path = os.path.join(d, "after.db")
            sock = os.path.join(d, "q.sock")
            before = sqlite3.connect(before_path)
            before.execute("pragma journal_mode=wal")
            before.execute("create table t(x)")
            before.commit()

            os.environ["QUIESCE_SOCKET"] = sock
            lib = ctypes.CDLL(LIBQUIESCE)
            self.assertEqual(lib.quiesce_attach(None), 0)
            self.assertEqual(lib.quiesce_attach(None), 0)  # a no-op

            before.execute("insert into t values (1)")  # keeps working
            before.commit()
            after = sqlite3.connect(after_path)
            after.execute("create table t(x)")
            after.execute("insert into t values (1)")
            after.commit()

            listed = call(sock, {"id": 1, "op": "list"})
            self.assertTrue(listed["ok"], listed)
            tracked = {db["path"]: db for db in listed["result"]["databases"]}
            untracked = {u["path"] for u in listed["result"]["untracked"]}
            self.assertIn(after_path, tracked)
            self.assertGreater(tracked[after_path]["generation"], 0)
            self.assertIn(before_path, untracked)
            self.assertNotIn(before_path, tracked)
            held = call(sock, {"id": 2, "op": "hold", "db": before_path})
            self.assertFalse(held["ok"])
            self.assertEqual(held["error"]["code"], "unsupported")
            self.assertIn("opened before quiesce attached",
                          held["error"]["message"])
            after.close()
            before.close()


if __name__ == "__main__":
    if not os.path.isfile(LIBQUIESCE):
        sys.exit(f"LIBQUIESCE={LIBQUIESCE!r} is not a file")
    unittest.main()
