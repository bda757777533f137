#!/usr/bin/env python3
"""The real-browser test (tests/firefox/browser_test.py) with .flap bundles.

The same run (a page writing a Cache API cache in one headless firefox-esr
profile, a page reading in a second one), with its bundle steps made .flap:
`bundle pack` gets `--format flap --key --chain` (a test PKI from
flaptool.py), the packed file must pass flaptool's independent verifier
with every body decodable as Gecko's reader decodes it, and `bundle
inject` gets `--trust` (the file keeps browser_test's .zip name: .flap is
found by content). The reading page must find every entry with its body
and headers, with no storage error. Arguments are browser_test.py's.
"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "firefox"))

try:
    import flaptool  # noqa: E402
except ImportError as e:
    print(f"SKIP: {e} (scripts/setup installs python3-cryptography)")
    sys.exit(77)
import browser_test  # noqa: E402
from harness import bundle_cli  # noqa: E402

CA = tempfile.mkdtemp(prefix="flap-ca-")
flaptool.make_ca(CA)
ROOT = os.path.join(CA, "root.pem")
_run_json = bundle_cli.run_json


def run_json(quiescectl, socket_path, args, timeout=120):
    pack = args[:2] == ["bundle", "pack"]
    if pack:
        args = args + ["--format", "flap", "--key",
                       os.path.join(CA, "device_key.pem"), "--chain",
                       os.path.join(CA, "chain.pem")]
    elif args[:2] == ["bundle", "inject"]:
        args = args + ["--trust", ROOT]
    code, out, err = _run_json(quiescectl, socket_path, args, timeout)
    if pack and code == 0:
        path = args[args.index("-o") + 1]
        bodies = {}
        try:
            s = flaptool.verify(path, open(ROOT, "rb").read(),
                                body_sink=lambda n, c: bodies.setdefault(
                                    n, bytearray()).extend(c))
            for body in bodies.values():
                flaptool.snappy_unframe(bytes(body))
            print(f"        flaptool: the .flap verifies, {len(bodies)} bodies "
                  f"Gecko can decode, reframed {out.get('reframed_bodies')}")
        except (flaptool.FlapError, ValueError) as e:
            return 1, None, f"flaptool rejects the packed .flap: {e}"
    return code, out, err


def bundle_meta(path):
    cd = flaptool.verify(path, open(ROOT, "rb").read())["meta"]["cacheDescriptor"]
    return {"number_of_entries": cd["number_of_entries"], "name": cd["name"],
            "origin": cd["origin"]}


bundle_cli.run_json = run_json
bundle_cli.bundle_meta = bundle_meta
browser_test.INJECT_EXTRA_ARGS = ["--trust", ROOT]

if __name__ == "__main__":
    sys.exit(browser_test.main())
