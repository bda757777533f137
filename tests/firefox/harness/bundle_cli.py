"""`quiescectl bundle` against the live browser: pack a cache of the
writing page's origin, inject the bundle into the reading page's."""

import json
import subprocess
import zipfile


def run_json(quiescectl, socket_path, args, timeout=120):
    """Runs `quiescectl --socket S --json ARGS`; returns (exit code, the
    parsed JSON output or None, stderr)."""
    out = subprocess.run([quiescectl, "--socket", socket_path, "--json"] + args,
                         capture_output=True, text=True, timeout=timeout)
    try:
        parsed = json.loads(out.stdout) if out.returncode == 0 else None
    except ValueError:
        parsed = None
    return out.returncode, parsed, out.stderr.strip()


def bundle_meta(path):
    """META.json of a bundle file (read with the standard library, apart
    from quiesce's own reader)."""
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("META.json"))
