"""Steps that talk to the live browser through quiesce's control channel,
with quiescectl. They run only when quiescectl has been built."""

import json
import os
import subprocess


def find_quiescectl(candidates):
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def list_databases(quiescectl, socket_path):
    """The databases `quiescectl list --json` reports, as a list of dicts."""
    out = subprocess.run(
        [quiescectl, "--socket", socket_path, "list", "--json"],
        capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"quiescectl list failed ({out.returncode}): "
                             f"{out.stderr.strip()}")
    listed = json.loads(out.stdout)
    if isinstance(listed, dict):
        listed = listed.get("databases", [])
    return listed


def check_listed_and_committing(quiescectl, socket_path, db_path):
    """Asserts that the live database is listed with generation > 0."""
    want = os.path.realpath(db_path)
    for db in list_databases(quiescectl, socket_path):
        if db.get("path") == want:
            if not db.get("generation", 0) > 0:
                raise AssertionError(f"{want} is listed with generation "
                                     f"{db.get('generation')}")
            return db
    raise AssertionError(f"{want} is not listed by quiescectl")
