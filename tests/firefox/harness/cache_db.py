"""The origin's Cache API database on disk, checked on a copy (never opened
in place: the browser may still hold it, and a second SQLite closing its
descriptor would drop the browser's POSIX locks)."""

import os
import shutil
import sqlite3


def origin_cache_dir(profile, port):
    return os.path.join(profile, "storage", "default",
                        f"http+++127.0.0.1+{port}", "cache")


def check_copy(cache_dir, scratch):
    """Copies caches.sqlite (and its WAL, if any) into `scratch` and returns
    {"integrity": str, "entries": int, "user_version": int}."""
    os.makedirs(scratch, exist_ok=True)
    for suffix in ("", "-wal"):
        src = os.path.join(cache_dir, "caches.sqlite" + suffix)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(scratch, "caches.sqlite" + suffix))
    con = sqlite3.connect(os.path.join(scratch, "caches.sqlite"))
    try:
        return {
            "integrity": con.execute("PRAGMA integrity_check").fetchone()[0],
            "entries": con.execute("SELECT count(*) FROM entries").fetchone()[0],
            "user_version": con.execute("PRAGMA user_version").fetchone()[0],
        }
    finally:
        con.close()
