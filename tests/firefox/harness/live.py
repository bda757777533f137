"""Steps that talk to the live browser through quiesce's control channel:
with quiescectl when it has been built, else over the wire protocol
directly (newline-delimited JSON on the Unix socket, DESIGN.md)."""

import json
import os
import socket
import subprocess


def find_quiescectl(candidates):
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _list_over_socket(socket_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(socket_path)
        s.sendall(b'{"id":1,"op":"list"}\n')
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            reply += chunk
    message = json.loads(reply)
    if not message.get("ok"):
        raise AssertionError(f"list failed: {message.get('error')}")
    return message["result"]["databases"]


def list_databases(quiescectl, socket_path):
    """The databases the live host reports, as a list of dicts: through
    `quiescectl list --json`, or the protocol when quiescectl is None."""
    if quiescectl is None:
        return _list_over_socket(socket_path)
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


def socket_owners(socket_path, pids):
    """The pids among `pids` that hold the listening socket at
    `socket_path` (matched by inode through /proc/net/unix)."""
    inodes = set()
    with open("/proc/net/unix", encoding="utf-8") as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == socket_path:
                inodes.add(fields[6])
    owners = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                owners.append(pid)
                break
    return owners


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
