#!/usr/bin/env python3
"""quiesce and .flap, checked against the independent flaptool.py.

1. Fixtures (valid, one per rule broken): flaptool's own verifier and
   `quiescectl bundle verify` must agree on accept/reject and name the same
   entry; memory stays bounded on the hostile ones.
2. A live Gecko-like host (tools/hostsim --gecko): inject flaptool's valid
   bundle (and every broken one, which must change nothing), the default
   refusal of an existing name and --overwrite; pack --format flap, which
   flaptool must accept with bodies Gecko can decode, and whose bodies come
   back byte for byte after an inject + pack round trip.

Env: QUIESCECTL, HOSTSIM (paths of the built tools). Run by meson
(`meson test -C build flap`) or by hand.
"""
import json
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
try:
    import flaptool  # noqa: E402
except ImportError as e:  # python3-cryptography missing: skip, and say so
    print(f"SKIP: {e} (scripts/setup installs python3-cryptography)")
    sys.exit(77)

QUIESCECTL = os.environ.get("QUIESCECTL", "build/tools/quiescectl/quiescectl")
HOSTSIM = os.environ.get("HOSTSIM", "build/tools/hostsim")
ORIGIN = "http://127.0.0.1:8000"


def run(*args, check=None):
    p = subprocess.run([QUIESCECTL, *args], capture_output=True, text=True,
                       timeout=120)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{args}: exit {p.returncode}, wanted {check}\n"
                             f"{p.stdout}\n{p.stderr}")
    return p


class Fixtures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="flap-test-")
        cls.ca = os.path.join(cls.dir, "ca")
        flaptool.make_ca(cls.ca)
        cls.root = os.path.join(cls.ca, "root.pem")
        for kind in flaptool.KINDS:
            flaptool.make_fixture(cls.ca, os.path.join(cls.dir, kind + ".flap"),
                                  kind)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def path(self, kind):
        return os.path.join(self.dir, kind + ".flap")

    def test_independent_verifier_and_quiescectl_agree(self):
        for kind, (accepted, entry) in flaptool.KINDS.items():
            with self.subTest(kind=kind):
                try:
                    flaptool.verify(self.path(kind), open(self.root, "rb").read())
                    py_entry = None
                except flaptool.FlapError as e:
                    py_entry = e.entry
                self.assertEqual(py_entry is None, accepted, py_entry)
                p = run("--json", "bundle", "verify", self.path(kind),
                        "--trust", self.root)
                self.assertEqual(p.returncode, 0 if accepted else 4, p.stderr)
                out = json.loads(p.stdout)
                self.assertEqual(out["ok"], accepted)
                if not accepted:
                    self.assertIn("rejected", p.stderr)
                    if entry is not None:
                        self.assertEqual(out["entry"], entry, out)
                        self.assertEqual(py_entry, entry)

    def test_valid_listing(self):
        out = json.loads(run("--json", "bundle", "verify", self.path("valid"),
                             "--trust", self.root, check=0).stdout)
        self.assertEqual((out["origin"], out["name"], out["namespace"]),
                         (ORIGIN, "flap-v1", "CACHE"))
        self.assertEqual(out["number_of_entries"], 3)
        self.assertEqual([e["index"] for e in out["entries"]], [0, 1, 2])
        self.assertEqual(out["device_cn"], "node-1")
        py = flaptool.verify(self.path("valid"), open(self.root, "rb").read())
        self.assertEqual(out["final_digest"], py["final_digest"])
        self.assertEqual(out["body_bytes"],
                         sum(v for k, v in py["sizes"].items() if "body" in k))
        text = run("bundle", "verify", self.path("valid"), "--trust",
                   self.root, check=0).stdout
        self.assertIn("item/1?q=1", text)

    def test_swork_listed_with_registration(self):
        out = json.loads(run("--json", "bundle", "verify", self.path("swork"),
                             "--trust", self.root, check=0).stdout)
        self.assertEqual(out["namespace"], "SWORK")
        self.assertEqual(out["service_worker"]["stanza"][2], ORIGIN + "/sw.js")

    def test_wrong_root_and_wrong_app_id(self):
        other = os.path.join(self.dir, "other")
        flaptool.make_ca(other)
        p = run("--json", "bundle", "verify", self.path("valid"), "--trust",
                os.path.join(other, "root.pem"), check=4)
        self.assertIn("not signed by the trusted root", json.loads(p.stdout)["reason"])
        p = run("--json", "bundle", "verify", self.path("valid"), "--trust",
                self.root, "--app-id", "com.example.app", check=4)
        self.assertIn("not the app id", json.loads(p.stdout)["reason"])
        cn = os.path.join(self.dir, "cn")
        flaptool.make_ca(cn, app_id="com.example.other")
        flaptool.make_fixture(cn, self.path("wrong_cn"))
        p = run("--json", "bundle", "verify", self.path("wrong_cn"),
                "--trust", os.path.join(cn, "root.pem"), check=4)
        self.assertEqual(json.loads(p.stdout)["entry"], "CERTCHAIN.pem")
        run("bundle", "verify", self.path("wrong_cn"), "--trust",
            os.path.join(cn, "root.pem"), "--app-id", "com.example.other",
            check=0)
        nocn = os.path.join(self.dir, "nocn")
        flaptool.make_ca(nocn, device_cn="")
        flaptool.make_fixture(nocn, self.path("empty_device_cn"))
        p = run("--json", "bundle", "verify", self.path("empty_device_cn"),
                "--trust", os.path.join(nocn, "root.pem"), check=4)
        self.assertIn("device certificate has no", json.loads(p.stdout)["reason"])

    def test_no_verify_skips_only_signatures(self):
        run("bundle", "verify", self.path("bad_signature"), "--no-verify",
            check=0)
        run("bundle", "verify", self.path("truncated"), "--no-verify", check=4)

    def test_cuts_and_flips_agree_with_the_independent_verifier(self):
        # Every truncation and a spread of single-byte corruptions of the
        # valid bundle: quiescectl exits 0 or 4 (never crashes, never
        # "other failure") and accepts exactly what flaptool accepts.
        import random
        data = open(self.path("valid"), "rb").read()
        rnd = random.Random(15)
        cases = [("cut", n) for n in range(0, len(data), len(data) // 40)]
        cases += [("flip", rnd.randrange(len(data))) for _ in range(60)]
        mutated = os.path.join(self.dir, "mutated.flap")
        root = open(self.root, "rb").read()
        for kind, at in cases:
            with self.subTest(kind=kind, at=at):
                if kind == "cut":
                    blob = data[:at]
                else:
                    blob = bytearray(data)
                    blob[at] ^= 1 << rnd.randrange(8)
                with open(mutated, "wb") as f:
                    f.write(blob)
                try:
                    flaptool.verify(mutated, root)
                    py_ok = True
                except flaptool.FlapError:
                    py_ok = False
                except Exception:  # noqa: BLE001 - e.g. a name not UTF-8
                    py_ok = False
                p = run("bundle", "verify", mutated, "--trust", self.root)
                self.assertIn(p.returncode, (0, 4), p.stderr)
                self.assertEqual(p.returncode == 0, py_ok, p.stderr)

    def test_hostile_input_memory_is_bounded(self):
        # A 1 GB claim of zeros in a body: the declared size is checked
        # first against a body stream that ends; and the zip bomb stops at
        # the entry limit. Max RSS of the children stays small.
        big = self.path("body_bomb")
        chain = open(os.path.join(self.ca, "chain.pem"), "rb").read()
        from cryptography.hazmat.primitives import serialization
        key = serialization.load_pem_private_key(
            open(os.path.join(self.ca, "device_key.pem"), "rb").read(), None)
        meta, sec, entries = flaptool.sample_bundle(n=1)
        import zlib
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = b"".join(z.compress(b"\0" * (1 << 20)) for _ in range(300)) + z.flush()
        with open(big, "wb") as f:
            flaptool.write_flap(f, chain, key, meta, sec, entries,
                                {"zip": {"0.response_body": {"raw": bomb}}})
        self.assertLess(os.path.getsize(big), 2 << 20)
        p = run("--json", "bundle", "verify", big, "--trust", self.root, check=4)
        self.assertEqual(json.loads(p.stdout)["entry"], "0.response_body")
        for kind in ("zip_bomb", "hostile_count"):
            run("bundle", "verify", self.path(kind), "--trust", self.root,
                check=4)
        rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        self.assertLess(rss_kb, 64 * 1024, "quiescectl used too much memory")


def local_headers(path):
    """(name, mtime from the 0x5455 extra) of each local header, in order."""
    data = open(path, "rb").read()
    out, pos = [], 0
    while data[pos:pos + 4] == b"PK\x03\x04":
        (flags, method, _t, _d, _c, csize, _u, nlen, xlen) = struct.unpack(
            "<HHHHIIIHH", data[pos + 6:pos + 30])
        name = data[pos + 30:pos + 30 + nlen].decode()
        extra = data[pos + 30 + nlen:pos + 30 + nlen + xlen]
        mtime = struct.unpack("<I", extra[5:9])[0] if extra[:2] == b"UT" else None
        out.append((name, flags, method, mtime))
        # skip data: deflate stream of stored blocks, then the descriptor
        import zlib
        d = zlib.decompressobj(-15)
        start = pos + 30 + nlen + xlen
        d.decompress(data[start:])
        used = len(data) - start - len(d.unused_data)
        pos = start + used + 16
    return out


@unittest.skipUnless(os.path.exists(HOSTSIM), "hostsim not built")
class Live(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="flap-live-")
        os.chmod(cls.dir, 0o700)
        cls.sock = os.path.join(cls.dir, "h.sock")
        cls.ca = os.path.join(cls.dir, "ca")
        flaptool.make_ca(cls.ca)
        cls.root = os.path.join(cls.ca, "root.pem")
        for kind in flaptool.KINDS:
            flaptool.make_fixture(cls.ca, os.path.join(cls.dir, kind + ".flap"),
                                  kind)
        cls.host = subprocess.Popen(
            [HOSTSIM, "--gecko", "--dir", os.path.join(cls.dir, "prof"),
             "--origins", "1", "--rate", "20", "--seconds", "300",
             # New URLs only and no deletes: no body disappears under a
             # pack (that race is the pack's retry, tested elsewhere).
             "--urls", "0", "--delete-every", "0",
             "--socket", cls.sock, "--writable"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(cls.sock)
                s.close()
                break
            except OSError:
                s.close()
                if cls.host.poll() is not None:
                    raise RuntimeError("hostsim exited: " +
                                       cls.host.stderr.read().decode())
                time.sleep(0.05)
        else:
            raise RuntimeError("hostsim's control socket never appeared")
        # The host's own cache has entries once ls shows some (ls fails
        # until the host has made its schema).
        while True:
            p = cls.q("--json", "bundle", "ls", "--origin", ORIGIN)
            if p.returncode == 0 and cls.caches().get(
                    "hostsim-v1", (0, 0))[1] >= 5:
                break
            if time.monotonic() > deadline:
                cls.tearDownClass()
                raise RuntimeError("hostsim's cache never filled: " + p.stderr)
            time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        cls.host.terminate()
        cls.host.wait(timeout=30)
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def q(cls, *args, check=None):
        return run("--socket", cls.sock, *args, check=check)

    @classmethod
    def caches(cls):
        out = json.loads(cls.q("--json", "bundle", "ls", "--origin", ORIGIN,
                               check=0).stdout)
        return {c["name"]: (c["namespace"], c["entries"], c["body_bytes"])
                for c in out["caches"]}

    def path(self, kind):
        return os.path.join(self.dir, kind + ".flap")

    def test_1_broken_bundles_change_nothing(self):
        before = {k: v for k, v in self.caches().items() if k != "hostsim-v1"}
        morgue = os.path.join(self.dir, "prof/storage/default/"
                              "http+++127.0.0.1+8000/cache/morgue")
        for kind, (accepted, _) in flaptool.KINDS.items():
            if accepted:
                continue
            with self.subTest(kind=kind):
                p = self.q("bundle", "inject", self.path(kind), "--trust",
                           self.root)
                self.assertEqual(p.returncode, 4, p.stderr)
                self.assertIn("nothing was injected", p.stderr)
        after = {k: v for k, v in self.caches().items() if k != "hostsim-v1"}
        self.assertEqual(before, after)
        # No staged body of a broken bundle reached morgue/ (their ids are
        # not the host's random v4 ids but flaptool's, and the injection
        # would have made new ones anyway: nothing .tmp is left either).
        leftovers = [f for _, _, fs in os.walk(morgue) for f in fs
                     if f.endswith(".tmp")]
        self.assertEqual(leftovers, [])

    def test_2_inject_refuse_overwrite(self):
        p = self.q("--json", "bundle", "inject", self.path("valid"), "--trust",
                   self.root, check=0)
        out = json.loads(p.stdout)
        self.assertEqual((out["cache"], out["entries"], out["bodies"]),
                         ("flap-v1", 3, 3))
        self.assertEqual(out["file"], self.path("valid"))
        self.assertEqual(self.caches()["flap-v1"][:2], (0, 3))
        p = self.q("bundle", "inject", self.path("valid"), "--trust",
                   self.root, check=4)
        self.assertIn("already has a cache", p.stderr)
        self.q("bundle", "inject", self.path("valid"), "--trust", self.root,
               "--overwrite", check=0)
        self.assertEqual(self.caches()["flap-v1"][:2], (0, 3))
        # Without --trust a .flap is a usage error; a quiesce bundle given
        # --trust is read as a .flap and refused with a hint.
        self.q("bundle", "inject", self.path("valid"), check=2)
        plain = os.path.join(self.dir, "plain.zip")
        self.q("bundle", "pack", "--origin", ORIGIN, "--cache", "flap-v1",
               "-o", plain, check=0)
        p = self.q("bundle", "inject", plain, "--trust", self.root,
                   "--rename", "plain", check=4)
        self.assertIn("quiesce bundle is not signed", p.stderr)
        self.q("bundle", "inject", plain, "--rename", "plain", check=0)

    def test_2b_opaque_refused_with_reason(self):
        # Verification accepts padding (Appelflap carries it per row); the
        # injection refuses it: .padding cannot be kept right from outside.
        p = self.q("bundle", "inject", self.path("opaque"), "--trust",
                   self.root, "--rename", "opaque", check=4)
        self.assertIn("paque", p.stderr)
        self.assertNotIn("opaque", self.caches())

    def test_2c_pack_filters_headers_as_appelflap(self):
        self.q("bundle", "inject", self.path("credentials"), "--trust",
               self.root, "--rename", "creds", check=0)
        for keep in (False, True):
            out = os.path.join(self.dir, f"creds-{keep}.flap")
            self.q("bundle", "pack", "--format", "flap", "--origin", ORIGIN,
                   "--cache", "creds", "-o", out, "--key",
                   os.path.join(self.ca, "device_key.pem"), "--chain",
                   os.path.join(self.ca, "chain.pem"),
                   *(["--keep-credentials"] if keep else []), check=0)
            s = flaptool.verify(out, open(self.root, "rb").read(),
                                keep_records=True)
            rec = next(r for r in s["records"]
                       if r["request_url_no_query"].endswith("/item/0"))
            req = [p["first"] for p in rec["request_headers"]]
            resp = [p["first"] for p in rec["response_headers"]]
            if keep:
                self.assertEqual(req, ["Accept", "Authorization",
                                       "Proxy-Authorization", "cookie"])
                self.assertIn("Set-Cookie", resp)
            else:
                # Appelflap's default: request Authorization,
                # Proxy-Authorization, Cookie; response Set-Cookie only.
                self.assertEqual(req, ["Accept"])
                self.assertNotIn("Set-Cookie", resp)
                self.assertIn("Cookie", resp)
            # The latest strict Date header, in Unix seconds.
            self.assertEqual(
                s["meta"]["cacheDescriptor"]["last_server_timestamp"],
                1796119200)

    def test_3_swork_cache_injected_registration_not(self):
        p = self.q("bundle", "inject", self.path("swork"), "--trust",
                   self.root, check=0)
        self.assertIn("NOT installed", p.stderr)
        self.assertEqual(self.caches()["sw-cache-name"][:2], (1, 3))

    def test_4_pack_verify_roundtrip(self):
        packed = os.path.join(self.dir, "packed.flap")
        out = json.loads(self.q(
            "--json", "bundle", "pack", "--format", "flap", "--origin", ORIGIN,
            "--cache", "hostsim-v1", "-o", packed, "--key",
            os.path.join(self.ca, "device_key.pem"), "--chain",
            os.path.join(self.ca, "chain.pem"), "--version", "12",
            check=0).stdout)
        self.assertIn("entries.response_body_disk_size", out["dropped"])
        bodies = {}
        s = flaptool.verify(packed, open(self.root, "rb").read(),
                            body_sink=lambda n, c: bodies.setdefault(
                                n, bytearray()).extend(c), keep_records=True)
        # JSON as kotlinx writes it: compact, keys in declaration order.
        self.assertEqual(s["meta_text"], flaptool.dumps(s["meta"]).encode())
        self.assertEqual(list(s["meta"]["cacheDescriptor"]),
                         ["origin", "name", "namespace", "number_of_entries",
                          "user_version", "last_server_timestamp"])
        self.assertRegex(s["meta"]["nonce"], "^[0-9a-f]{32}$")
        for rec in s["records"]:
            self.assertEqual(list(rec), [k for k, _ in flaptool.ENTRY_KEYS])
            self.assertEqual(rec["response_url_list"],
                             sorted(rec["response_url_list"]))
            for h in ("request_headers", "response_headers"):
                pairs = [(p["first"], p["second"]) for p in rec[h]]
                self.assertEqual(pairs, sorted(pairs))
            self.assertEqual(rec["request_url_no_query_hash"],
                             flaptool.signed_bytes(flaptool.gecko_hash(
                                 rec["request_url_no_query"])))
        self.assertEqual(s["meta"]["cacheDescriptor"]["user_version"], 12)
        self.assertEqual(list(s["meta"]), ["format", "signatureAlgorithm",
                                           "cacheDescriptor", "nonce"])
        self.assertEqual(s["meta"]["cacheDescriptor"]["number_of_entries"],
                         out["entries"])
        for name, body in bodies.items():
            flaptool.snappy_unframe(bytes(body))  # Gecko can read it
        headers = local_headers(packed)
        self.assertEqual(headers[0][0], "CERTCHAIN.pem")
        self.assertEqual(headers[1][0], "4")
        for k, (name, flags, method, mtime) in enumerate(headers):
            self.assertEqual((flags, method, mtime), (0x0808, 8, k * 60), name)
        # Round trip: inject under another name, pack that, same bodies.
        self.q("bundle", "inject", packed, "--trust", self.root, "--rename",
               "copy", check=0)
        again = os.path.join(self.dir, "again.flap")
        self.q("bundle", "pack", "--format", "flap", "--origin", ORIGIN,
               "--cache", "copy", "-o", again, "--key",
               os.path.join(self.ca, "device_key.pem"), "--chain",
               os.path.join(self.ca, "chain.pem"), check=0)
        bodies2 = {}
        s2 = flaptool.verify(again, open(self.root, "rb").read(),
                             body_sink=lambda n, c: bodies2.setdefault(
                                 n, bytearray()).extend(c))

        def by_url(summary, bodies):
            return {e["url"]: flaptool.snappy_unframe(
                bytes(bodies[f"{e['index']}.response_body"]))
                for e in summary["entries"]}
        self.assertEqual(by_url(s, bodies), by_url(s2, bodies2))
        # An existing output is not overwritten (exit 2, as for every
        # quiescectl output), unless --force.
        pack_again = ("bundle", "pack", "--format", "flap", "--origin",
                      ORIGIN, "--cache", "copy", "-o", again, "--key",
                      os.path.join(self.ca, "device_key.pem"), "--chain",
                      os.path.join(self.ca, "chain.pem"))
        before = os.stat(again).st_mtime_ns
        self.q(*pack_again, check=2)
        self.assertEqual(os.stat(again).st_mtime_ns, before)
        self.q(*pack_again, "--force", check=0)
        flaptool.verify(again, open(os.path.join(self.ca, "root.pem"), "rb").read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
