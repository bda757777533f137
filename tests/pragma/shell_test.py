#!/usr/bin/env python3
"""PRAGMA quiesce_status from the sqlite3 shell with the shim .load-ed.

usage: shell_test.py SQLITE3 LIBQUIESCE
"""
import json
import os
import subprocess
import sys
import tempfile


def main():
    sqlite3, lib = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "app.db")
        env = dict(os.environ, QUIESCE_DEFAULT="1")
        env.pop("QUIESCE_SOCKET", None)
        out = subprocess.run(
            [sqlite3, ":memory:", ".load " + lib,
             ".open " + db, "PRAGMA journal_mode=wal;",
             "CREATE TABLE t(x);", ".print ---", "PRAGMA quiesce_status;",
             "INSERT INTO t VALUES(1),(2);", "INSERT INTO t VALUES(3);",
             ".print ---", "PRAGMA quiesce_status;",
             ".print ---", "PRAGMA quiesce_status=json;"],
            env=env, capture_output=True, text=True, timeout=60)
        print(out.stdout, out.stderr, sep="")
        if out.returncode != 0:
            sys.exit(f"sqlite3 exited {out.returncode}")
        parts = out.stdout.split("---\n")
        if len(parts) != 4:
            sys.exit("expected the three outputs of PRAGMA quiesce_status")
        before = dict(line.split("=", 1) for line in parts[1].splitlines())
        text = dict(line.split("=", 1) for line in parts[2].splitlines())
        status = json.loads(parts[3])
        generation = int(before["generation"]) + 2  # the two INSERTs
        real = os.path.realpath(db)
        checks = [
            (text.get("path"), real),
            (text.get("journal_mode"), "wal"),
            (text.get("generation"), str(generation)),
            (status["path"], real),
            (status["journal_mode"], "wal"),
            (status["generation"], generation),
            (status["counters"]["transactions"],
             int(text["counters.transactions"])),
            (str(status["position"]["mx_frame"]), text.get("position.mx_frame")),
        ]
        for got, want in checks:
            if got != want:
                sys.exit(f"got {got!r}, want {want!r}")
    print("ok: PRAGMA quiesce_status from the sqlite3 shell")


if __name__ == "__main__":
    main()
