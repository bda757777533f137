#!/usr/bin/env python3
"""An independent .flap (Appelflap cache bundle) writer and verifier.

Written from /work/shared/reference/appelflap-flap.md alone (section numbers
below are that file's), never from quiesce's C++ code, so that each checks
the other. Needs Debian's python3-cryptography.

  flaptool.py ca DIR [--app-id ID] [--device-cn CN]
      A test PKI: DIR/root.pem, DIR/chain.pem (device, deployment, root as
      §6 encodes them), DIR/device_key.pem, DIR/root_key.pem.
  flaptool.py make DIR OUT [--kind KIND]
      A bundle signed with DIR's device key: KIND is "valid" or one of the
      broken kinds (flaptool.py kinds lists them).
  flaptool.py verify FILE --trust ROOT.pem [--app-id ID] [--json]
      Reads FILE as Appelflap's reader does (§2, §5, §6): exit 0 and a
      summary, or exit 4 and "entry: reason" of the first violation.
"""
import argparse
import base64
import datetime
import hashlib
import io
import json
import os
import re
import struct
import sys
import zlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

DEFAULT_APP_ID = "org.nontrivialpursuit.appelflap"
FORMAT_VERSION = 4
LIMITS = {"CERTCHAIN.pem": 8192, "4": 0, "META.json": 8192,
          "SECURITY_INFO.json": 8192 * 1024, "entry": 512 * 1024, "sig": 1024}
ENTRY_KEYS = [
    ("request_method", "str"), ("request_url_no_query", "str"),
    ("request_url_no_query_hash", "bytes"), ("request_url_query", "str"),
    ("request_url_query_hash", "bytes"), ("request_referrer", "str"),
    ("request_headers_guard", "int"), ("request_mode", "int"),
    ("request_credentials", "int"), ("request_contentpolicytype", "int"),
    ("request_cache", "int"), ("request_body_id", "str?"),
    ("response_type", "int"), ("response_status", "int"),
    ("response_status_text", "str"), ("response_headers_guard", "int"),
    ("response_body_id", "str?"), ("response_security_info_id", "int?"),
    ("response_principal_info", "str"), ("request_redirect", "int"),
    ("request_referrer_policy", "int"), ("request_integrity", "str"),
    ("request_url_fragment", "str"), ("response_padding_size", "int?"),
    ("response_url_list", "strlist"), ("request_headers", "pairs"),
    ("response_headers", "pairs"), ("request_bodysize", "long?"),
    ("response_bodysize", "long?"),
]


class FlapError(Exception):
    def __init__(self, entry, reason):
        super().__init__(f"{entry}: {reason}")
        self.entry = entry
        self.reason = reason


# ---------------------------------------------------------------------------
# JSON as kotlinx.serialization writes it (§7): compact, keys in order.

def dumps(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def signed_bytes(data):
    return [b - 256 if b > 127 else b for b in data]


def unsigned_bytes(values, where):
    if not isinstance(values, list):
        raise FlapError(where, "a byte array must be a JSON array")
    out = bytearray()
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not -128 <= v <= 127:
            raise FlapError(where, f"byte value {v!r} is not in -128..127")
        out.append(v & 0xFF)
    return bytes(out)


# ---------------------------------------------------------------------------
# Snappy framing with compressed chunks only (§10), literal-only snappy.

def crc32c(data):
    """CRC-32C as Gecko's ComputeCrc32c(~0, ...) returns it: the register
    WITHOUT the final inversion of the standard CRC-32C (seen on a real
    Firefox profile's morgue files; Gecko's reader checks it this way)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def snappy_literal(data):
    out = bytearray(varint(len(data)))
    if data:
        n = len(data) - 1
        if n < 60:
            out.append(n << 2)
        else:
            nb = (n.bit_length() + 7) // 8
            out.append((59 + nb) << 2)
            out += n.to_bytes(nb, "little")
        out += data
    return bytes(out)


def snappy_framed(data):
    out = bytearray(b"\xff\x06\x00\x00sNaPpY")
    pieces = [data[i:i + 65536] for i in range(0, len(data), 65536)] or [b""]
    for piece in pieces:
        comp = snappy_literal(piece)
        out.append(0)
        out += (len(comp) + 4).to_bytes(3, "little")
        out += struct.pack("<I", masked(crc32c(piece)))
        out += comp
    return bytes(out)


def snappy_unframe(data):
    """Decodes a body as Gecko's reader does: identifier and compressed
    chunks only. Raises ValueError."""
    if not data.startswith(b"\xff\x06\x00\x00sNaPpY"):
        raise ValueError("no stream identifier")
    pos, out = 10, bytearray()
    while pos < len(data):
        if pos + 4 > len(data):
            raise ValueError("truncated chunk header")
        kind = data[pos]
        length = int.from_bytes(data[pos + 1:pos + 4], "little")
        chunk = data[pos + 4:pos + 4 + length]
        if len(chunk) != length:
            raise ValueError("truncated chunk")
        pos += 4 + length
        if kind == 0xFF:
            continue
        if kind != 0:
            raise ValueError(f"chunk type 0x{kind:02x} (Gecko reads only 0x00)")
        crc, comp = struct.unpack("<I", chunk[:4])[0], chunk[4:]
        piece = snappy_raw_decode(comp)
        if len(piece) > 65536:
            raise ValueError("chunk over 64 KiB")
        if masked(crc32c(piece)) != crc:
            raise ValueError("chunk CRC-32C mismatch")
        out += piece
    return bytes(out)


def snappy_raw_decode(comp):
    n, shift, pos = 0, 0, 0
    while True:
        b = comp[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    out = bytearray()
    while pos < len(comp):
        tag = comp[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                ln = int.from_bytes(comp[pos:pos + nb], "little")
                pos += nb
            ln += 1
            out += comp[pos:pos + ln]
            pos += ln
            continue
        if kind == 1:
            ln = ((tag >> 2) & 7) + 4
            off = ((tag >> 5) << 8) | comp[pos]
            pos += 1
        elif kind == 2:
            ln = (tag >> 2) + 1
            off = int.from_bytes(comp[pos:pos + 2], "little")
            pos += 2
        else:
            ln = (tag >> 2) + 1
            off = int.from_bytes(comp[pos:pos + 4], "little")
            pos += 4
        if off == 0 or off > len(out):
            raise ValueError("bad copy offset")
        for _ in range(ln):
            out.append(out[-off])
    if len(out) != n:
        raise ValueError("snappy length mismatch")
    return bytes(out)


# ---------------------------------------------------------------------------
# Test PKI (§6).

def pem_chain(certs):
    parts = []
    for cert in certs:
        b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        lines = [b64[i:i + 76] for i in range(0, len(b64), 76)]
        parts.append("-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) +
                     "\n-----END CERTIFICATE-----")
    return "\n".join(parts).encode("ascii")


def _cert(subject_cn, issuer_cn, public_key, signing_key, ca, serial):
    name = lambda cn: x509.Name([x509.NameAttribute(
        NameOID.COMMON_NAME, cn, _validate=False)]) \
        if cn is not None else x509.Name([])
    builder = (x509.CertificateBuilder()
               .subject_name(name(subject_cn)).issuer_name(name(issuer_cn))
               .public_key(public_key).serial_number(serial)
               .not_valid_before(datetime.datetime(1970, 1, 1))
               .not_valid_after(datetime.datetime(2222, 1, 1)))
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(signing_key, hashes.SHA256())


def make_ca(directory, app_id=DEFAULT_APP_ID, device_cn="node-1",
            root_cn="org.nontrivialpursuit.appelflaproot"):
    os.makedirs(directory, exist_ok=True)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = _cert(root_cn, root_cn, root_key.public_key(), root_key, True, 1)
    dep_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    dep = _cert(app_id, root_cn, dep_key.public_key(), root_key, True, 2)
    dev_key = ec.generate_private_key(ec.SECP256R1())
    dev = _cert(device_cn, app_id, dev_key.public_key(), dep_key, False, 3)
    write = lambda n, b: open(os.path.join(directory, n), "wb").write(b)
    write("root.pem", root.public_bytes(serialization.Encoding.PEM))
    write("chain.pem", pem_chain([dev, dep, root]))
    pkcs8 = lambda k: k.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    write("device_key.pem", pkcs8(dev_key))
    write("root_key.pem", pkcs8(root_key))
    write("deployment_key.pem", pkcs8(dep_key))


# ---------------------------------------------------------------------------
# Writer: Java's streaming ZipOutputStream, DEFLATED level 0 (§2), the
# digest chain and signatures (§4).

class ZipOut:
    def __init__(self, f):
        self.f, self.central, self.count = f, [], 0

    def add(self, name, data, method=8, descriptor=True, mtime=None,
            lie_size=None, raw=None, crc_xor=0, flags_or=0):
        name_b = name.encode("utf-8", "surrogateescape")
        mtime = self.count * 60 if mtime is None else mtime
        extra = struct.pack("<HHBI", 0x5455, 5, 1, mtime & 0xFFFFFFFF)
        crc = zlib.crc32(data) ^ crc_xor
        if raw is not None:
            comp = raw
        elif method == 8:
            c = zlib.compressobj(0, zlib.DEFLATED, -15)
            comp = c.compress(data) + c.flush()
        else:
            comp = data
        flags = 0x0800 | (0x08 if descriptor else 0) | flags_or
        usize = len(data) if lie_size is None else lie_size
        offset = self.f.tell()
        if descriptor:
            hdr = (0, 0, 0)
        else:
            hdr = (crc, len(comp), usize)
        self.f.write(struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, flags, method,
                                 0, 0x21, *hdr, len(name_b), len(extra)))
        self.f.write(name_b + extra + comp)
        if descriptor:
            self.f.write(struct.pack("<IIII", 0x08074b50, crc, len(comp), usize))
        self.central.append((name_b, extra, flags, method, crc, len(comp),
                             usize, offset))
        self.count += 1

    def close(self):
        start = self.f.tell()
        for name_b, extra, flags, method, crc, csize, usize, off in self.central:
            self.f.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 20, 20,
                                     flags, method, 0, 0x21, crc, csize, usize,
                                     len(name_b), len(extra), 0, 0, 0, 0, off))
            self.f.write(name_b + extra)
        size = self.f.tell() - start
        n = len(self.central)
        self.f.write(struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, n, n, size,
                                 start, 0))


def gecko_hash(s):
    return hashlib.sha1(s.encode("utf-8")).digest()[:8]


def make_entry(url, body_id=None, body=None, headers=None, sec_id=None):
    no_query, _, query = url.partition("?")
    query = "?" + query if query else ""
    record = {
        "request_method": "GET", "request_url_no_query": no_query,
        "request_url_no_query_hash": signed_bytes(gecko_hash(no_query)),
        "request_url_query": query,
        "request_url_query_hash": signed_bytes(gecko_hash(query)),
        "request_referrer": "about:client", "request_headers_guard": 2,
        "request_mode": 2, "request_credentials": 1,
        "request_contentpolicytype": 1, "request_cache": 0,
        "request_body_id": None, "response_type": 0, "response_status": 200,
        "response_status_text": "OK", "response_headers_guard": 4,
        "response_body_id": body_id, "response_security_info_id": sec_id,
        "response_principal_info": "", "request_redirect": 0,
        "request_referrer_policy": 0, "request_integrity": "",
        "request_url_fragment": "", "response_padding_size": None,
        "response_url_list": sorted([url]),
        "request_headers": [],
        "response_headers": sorted(
            [{"first": k, "second": v} for k, v in (headers or [])],
            key=lambda p: (p["first"], p["second"])),
        "request_bodysize": None,
        "response_bodysize": len(body) if body is not None else None,
    }
    return record


def sample_bundle(origin="http://127.0.0.1:8000", name="flap-v1", n=3,
                  namespace="CACHE", sw=None):
    """META, SECURITY_INFO and n entries with bodies, as a packer makes."""
    entries = []
    for i in range(n):
        uid = "{%08x-0000-4000-8000-%012x}" % (0xabc00000 + i, 0x100 + i)
        payload = (f"body {i} " * (20 + 3000 * i)).encode()
        body = snappy_framed(payload)
        rec = make_entry(f"{origin}/item/{i}" + ("?q=1" if i == 1 else ""),
                         uid, body, [("Content-Type", "text/plain"),
                                     ("X-Idx", str(i))])
        entries.append((rec, None, body))
    meta = {"format": FORMAT_VERSION, "signatureAlgorithm": "SHA256withECDSA",
            "cacheDescriptor": {"origin": origin, "name": name,
                                "namespace": namespace, "number_of_entries": n,
                                "user_version": 7,
                                "last_server_timestamp": None}}
    if sw is not None:
        meta["serviceworkerDescriptor"] = sw
    meta["nonce"] = hashlib.md5(os.urandom(128)).hexdigest()
    return meta, {"security_map": {}}, entries


class Signer:
    def __init__(self, key):
        self.key, self.digest = key, None

    def feed(self, data):
        h = hashlib.sha256()
        if self.digest is not None:
            h.update(self.digest)
        h.update(data)
        self.digest = h.digest()
        return self.digest

    def sign(self):
        return self.key.sign(self.digest, ec.ECDSA(hashes.SHA256()))


def write_flap(out, chain_pem, key, meta, secinfo, entries, tamper=None):
    """Writes a .flap; `tamper` (a dict) breaks one rule for fixtures."""
    t = tamper or {}
    signer = Signer(key)
    items = []  # (name, data, signed)
    items.append(("CERTCHAIN.pem", chain_pem, False))
    items.append((str(FORMAT_VERSION), b"", False))
    items.append(("META.json", dumps(meta).encode(), True))
    items.append(("SECURITY_INFO.json", dumps(secinfo).encode(), True))
    for i, (rec, req, resp) in enumerate(entries):
        items.append((f"{i}.json", dumps(rec).encode(), True))
        if req is not None:
            items.append((f"{i}.request_body", req, True))
        if resp is not None:
            items.append((f"{i}.response_body", resp, True))
    if "swap" in t:
        a, b = t["swap"]
        items[a], items[b] = items[b], items[a]
    zout = ZipOut(out)
    for idx, (name, data, signed) in enumerate(items):
        digest_data = t.get("digest_data", {}).get(name, data)
        signer.feed(digest_data)
        zout.add(t.get("names", {}).get(name, name), data,
                 **t.get("zip", {}).get(name, {}))
        if signed:
            sig = signer.sign()
            if name in t.get("bad_sig", ()):
                sig = bytearray(sig)
                sig[-1] ^= 1
                sig = bytes(sig)
            zout.add(t.get("names", {}).get(name + ".sig", name + ".sig"),
                     t.get("sig_bytes", {}).get(name, sig))
    if t.get("no_central"):
        return
    zout.close()


# ---------------------------------------------------------------------------
# Reader: Java's ZipInputStream over local headers only (§2).

class ZipIn:
    def __init__(self, f):
        self.f = f

    def _read(self, n, what):
        data = self.f.read(n)
        if len(data) != n:
            raise FlapError(what, "truncated: the archive ends inside it")
        return data

    def next(self):
        """(name, reader) of the next local header, or None at the end."""
        sig = self.f.read(4)
        if len(sig) < 4 or struct.unpack("<I", sig)[0] != 0x04034b50:
            return None
        (ver, flags, method, _t, _d, crc, csize, usize, nlen,
         xlen) = struct.unpack("<HHHHHIIIHH", self._read(26, "local header"))
        try:
            name = self._read(nlen, "local header").decode("utf-8", "strict")
        except UnicodeDecodeError:
            raise FlapError("an entry name", "not UTF-8")
        self._read(xlen, name)
        if flags & 1:
            raise FlapError(name, "encrypted entries are not accepted")
        if method not in (0, 8):
            raise FlapError(name, f"compression method {method} is not accepted")
        if method == 0 and flags & 8:
            raise FlapError(name, "a STORED entry with a data descriptor")
        return name, EntryReader(self, name, flags, method, crc, csize, usize)


class EntryReader:
    def __init__(self, zin, name, flags, method, crc, csize, usize):
        self.zin, self.name, self.flags, self.method = zin, name, flags, method
        self.crc_expect, self.csize, self.usize = crc, csize, usize
        self.crc, self.done, self.out_count, self.in_count = 0, False, 0, 0
        self.inflater = zlib.decompressobj(-15) if method == 8 else None
        self.pending = b""

    def read(self, limit):
        """Up to `limit` bytes of data; b"" at the end (then checked)."""
        f = self.zin.f
        while True:
            if self.done:
                return b""
            if self.method == 0:
                want = min(limit, self.usize - self.out_count)
                if want == 0:
                    self._finish()
                    return b""
                data = self.zin._read(want, self.name)
                self.in_count += len(data)
            else:
                if self.pending:
                    data = self.inflater.decompress(self.pending, limit)
                    self.pending = self.inflater.unconsumed_tail
                else:
                    if self.inflater.eof:
                        self._finish()
                        return b""
                    raw = f.read(16384)
                    if not raw:
                        raise FlapError(self.name,
                                        "truncated: the archive ends inside it")
                    self.in_count += len(raw)
                    data = self.inflater.decompress(raw, limit)
                    self.pending = self.inflater.unconsumed_tail
                if self.inflater.eof:
                    # Give back what the deflate stream did not use.
                    unused = self.inflater.unused_data
                    if unused:
                        f.seek(-len(unused), 1)
                        self.in_count -= len(unused)
                if not data and not self.inflater.eof:
                    continue
            self.out_count += len(data)
            self.crc = zlib.crc32(data, self.crc)
            if data:
                return data

    def _finish(self):
        self.done = True
        if self.method == 8 and self.flags & 8:
            d = self.zin._read(4, self.name)
            if struct.unpack("<I", d)[0] == 0x08074b50:
                d = self.zin._read(4, self.name)
            crc = struct.unpack("<I", d)[0]
            wide = self.out_count > 0xFFFFFFFF or self.in_count > 0xFFFFFFFF
            fmt = "<QQ" if wide else "<II"
            csize, usize = struct.unpack(fmt, self.zin._read(struct.calcsize(fmt),
                                                             self.name))
        else:
            crc, csize, usize = self.crc_expect, self.csize, self.usize
        if crc != self.crc:
            raise FlapError(self.name, "ZIP error: CRC-32 mismatch")
        if self.method == 8 and (csize != self.in_count or usize != self.out_count):
            raise FlapError(self.name, "ZIP error: entry size mismatch")

    def read_limited(self, limit):
        """All data, rejecting more than `limit` bytes (reads limit+1)."""
        buf = bytearray()
        while True:
            chunk = self.read(limit + 1 - len(buf))
            if not chunk:
                return bytes(buf)
            buf += chunk
            if len(buf) > limit:
                raise FlapError(self.name, f"over its size limit of {limit} bytes")


# ---------------------------------------------------------------------------
# Verifier (§5, §6, §7-§9).

def parse_pem_chain(data):
    text = data.decode("ascii", "strict")
    certs, pos = [], 0
    while pos < len(text):
        m = re.compile(r"^-----BEGIN CERTIFICATE-----\r?\n?", re.M).search(text, pos)
        if not m:
            raise FlapError("CERTCHAIN.pem", "trailing bytes after the last certificate")
        end = text.find("-----END CERTIFICATE-----", m.end())
        if end < 0:
            raise FlapError("CERTCHAIN.pem", "a certificate without its END line")
        der = base64.b64decode("".join(text[m.end():end].split()), validate=True)
        certs.append(x509.load_der_x509_certificate(der))
        pos = end + len("-----END CERTIFICATE-----")
        if text.startswith("\r\n", pos):
            pos += 2
        elif pos < len(text) and text[pos] in "\r\n":
            pos += 1
    return certs


def verify_cert_sig(cert, issuer_key):
    if isinstance(issuer_key, rsa.RSAPublicKey):
        issuer_key.verify(cert.signature, cert.tbs_certificate_bytes,
                          padding.PKCS1v15(), cert.signature_hash_algorithm)
    elif isinstance(issuer_key, ec.EllipticCurvePublicKey):
        issuer_key.verify(cert.signature, cert.tbs_certificate_bytes,
                          ec.ECDSA(cert.signature_hash_algorithm))
    else:
        raise InvalidSignature()


def first_cn(cert):
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return attrs[0].value if attrs else None


def check_chain(data, root, app_id):
    try:
        certs = parse_pem_chain(data)
    except FlapError:
        raise
    except Exception as e:  # noqa: BLE001 - any parse failure rejects
        raise FlapError("CERTCHAIN.pem", f"not a PEM certificate chain ({e})")
    if len(certs) != 3:
        raise FlapError("CERTCHAIN.pem", f"{len(certs)} certificates, not 3")
    device, deployment = certs[0], certs[1]
    try:
        verify_cert_sig(deployment, root.public_key())
    except Exception:
        raise FlapError("CERTCHAIN.pem",
                        "the deployment certificate is not signed by the trusted root")
    try:
        verify_cert_sig(device, deployment.public_key())
    except Exception:
        raise FlapError("CERTCHAIN.pem",
                        "the device certificate is not signed by the deployment certificate")
    if first_cn(deployment) != app_id:
        raise FlapError("CERTCHAIN.pem",
                        f"the deployment CN is {first_cn(deployment)!r}, not the app id {app_id!r}")
    if not first_cn(device):
        raise FlapError("CERTCHAIN.pem", "the device certificate has no CN")
    key = device.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise FlapError("CERTCHAIN.pem", "the device key is not an EC key")
    try:
        ku = device.extensions.get_extension_for_class(x509.KeyUsage)
        if ku.critical and not ku.value.digital_signature:
            raise FlapError("CERTCHAIN.pem",
                            "the device certificate's keyUsage forbids signing")
    except x509.ExtensionNotFound:
        pass
    return device


def load_json(name, data):
    try:
        return json.loads(data.decode("utf-8"))
    except Exception as e:  # noqa: BLE001
        raise FlapError(name, f"not JSON ({e})")


def check_type(name, key, value, kind):
    nullable = kind.endswith("?")
    base = kind.rstrip("?")
    if value is None:
        if nullable:
            return
        raise FlapError(name, f"{key} is null")
    if base in ("int", "long"):
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise FlapError(name, f"{key} is not an integer")
        bits = 31 if base == "int" else 63
        if not -(1 << bits) <= value < (1 << bits):
            raise FlapError(name, f"{key} is out of range")
    elif base == "str":
        if not isinstance(value, str):
            raise FlapError(name, f"{key} is not a string")
    elif base == "bytes":
        try:
            unsigned_bytes(value, name)
        except FlapError as e:
            raise FlapError(name, f"{key}: {e.reason}")
    elif base == "strlist":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise FlapError(name, f"{key} is not a list of strings")
    elif base == "pairs":
        if not isinstance(value, list):
            raise FlapError(name, f"{key} is not a list")
        for p in value:
            if (not isinstance(p, dict) or set(p) != {"first", "second"} or
                    not isinstance(p["first"], str) or
                    not isinstance(p["second"], str)):
                raise FlapError(name, f"{key} holds something not a string pair")


def check_object(name, obj, fields):
    """fields: key -> (kind, required)."""
    if not isinstance(obj, dict):
        raise FlapError(name, "not a JSON object")
    for key in obj:
        if key not in fields:
            raise FlapError(name, f"unknown key {key!r}")
    for key, (kind, required) in fields.items():
        if key not in obj:
            if required:
                raise FlapError(name, f"missing key {key!r}")
            continue
        if kind == "object?":
            if obj[key] is not None and not isinstance(obj[key], dict):
                raise FlapError(name, f"{key} is not an object")
        elif kind == "object":
            if not isinstance(obj[key], dict):
                raise FlapError(name, f"{key} is not an object")
        elif kind == "namespace":
            if obj[key] not in ("CACHE", "SWORK"):
                raise FlapError(name, f"{key} is not CACHE or SWORK")
        else:
            check_type(name, key, obj[key], kind)


def check_meta(meta):
    check_object("META.json", meta, {
        "format": ("int", True), "signatureAlgorithm": ("str", True),
        "cacheDescriptor": ("object", True),
        "serviceworkerDescriptor": ("object?", False),
        "nonce": ("str", True), "name": ("str", False)})
    check_object("META.json", meta["cacheDescriptor"], {
        "origin": ("str", True), "name": ("str", True),
        "namespace": ("namespace", True), "number_of_entries": ("int", True),
        "user_version": ("long?", True), "last_server_timestamp": ("long?", True)})
    sw = meta.get("serviceworkerDescriptor")
    if sw is not None:
        check_object("META.json", sw, {"version": ("int", True),
                                       "stanza": ("strlist", True)})
        if len(sw["stanza"]) < 3 or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]*",
                                                     sw["stanza"][2]):
            raise FlapError("META.json",
                            "the service-worker stanza has no script URL in field 3")
    if meta["signatureAlgorithm"] != "SHA256withECDSA":
        raise FlapError("META.json",
                        f"signature algorithm {meta['signatureAlgorithm']!r} is not SHA256withECDSA")


def check_security_info(sec):
    check_object("SECURITY_INFO.json", sec, {"security_map": ("object", True)})
    for key, value in sec["security_map"].items():
        if not re.fullmatch(r"-?[0-9]+", key) or not -(1 << 31) <= int(key) < (1 << 31):
            raise FlapError("SECURITY_INFO.json", f"key {key!r} is not an Int")
        check_object("SECURITY_INFO.json", value, {"first": ("bytes", True),
                                                   "second": ("bytes", True)})


def verify(path_or_file, root_pem, app_id=DEFAULT_APP_ID, body_sink=None,
           keep_records=False):
    """Returns a summary dict; raises FlapError at the first violation.
    keep_records: the summary's "records" holds every <i>.json as read
    (key order kept) and "meta_text" META.json's bytes."""
    root = x509.load_pem_x509_certificate(root_pem)
    f = open(path_or_file, "rb") if isinstance(path_or_file, str) else path_or_file
    with f:
        zin = ZipIn(f)
        state = {"digest": None, "count": 0}
        summary = {"entries": [], "sizes": {}}

        def next_entry(expect):
            got = zin.next()
            if got is None:
                raise FlapError(expect, "missing: the archive's entries end before it")
            return got

        def digest(data):
            h = hashlib.sha256()
            if state["digest"] is not None:
                h.update(state["digest"])
            h.update(data)
            state["digest"] = h.digest()

        def read_data(expect, limit, exact=None):
            name, r = next_entry(expect)
            if name != expect:
                raise FlapError(expect, f"unexpected entry name {name!r}")
            if exact is None:
                data = r.read_limited(limit)
            else:
                h = hashlib.sha256()
                if state["digest"] is not None:
                    h.update(state["digest"])
                n = 0
                while True:
                    chunk = r.read(min(65536, exact + 1 - n))
                    if not chunk:
                        break
                    n += len(chunk)
                    if n > exact:
                        raise FlapError(expect, f"longer than its size {exact}")
                    h.update(chunk)
                    if body_sink:
                        body_sink(expect, chunk)
                if n != exact:
                    raise FlapError(expect, f"{n} bytes, not its size {exact}")
                state["digest"] = h.digest()
                summary["sizes"][expect] = n
                return None
            digest(data)
            summary["sizes"][expect] = len(data)
            return data

        def check_sig(signed, key):
            name, r = next_entry(signed + ".sig")
            if not name.endswith(".sig"):
                raise FlapError(signed + ".sig", f"unexpected entry name {name!r}")
            sig = r.read_limited(LIMITS["sig"])
            try:
                key.verify(sig, state["digest"], ec.ECDSA(hashes.SHA256()))
            except Exception:
                raise FlapError(name, "the signature does not verify")

        chain = read_data("CERTCHAIN.pem", LIMITS["CERTCHAIN.pem"])
        device = check_chain(chain, root, app_id)
        key = device.public_key()
        got = next_entry("4")
        if got[0] != "4":
            raise FlapError("4", "bundle not compatible with this version "
                            f"(entry 2 is {got[0]!r}, not '4')")
        digest(got[1].read_limited(0))
        meta_text = read_data("META.json", LIMITS["META.json"])
        meta = load_json("META.json", meta_text)
        if keep_records:
            summary["meta_text"] = meta_text
            summary["records"] = []
        check_meta(meta)
        check_sig("META.json", key)
        sec = load_json("SECURITY_INFO.json",
                        read_data("SECURITY_INFO.json", LIMITS["SECURITY_INFO.json"]))
        check_security_info(sec)
        check_sig("SECURITY_INFO.json", key)
        seen_ids = set()
        n = meta["cacheDescriptor"]["number_of_entries"]
        for i in range(n):
            name = f"{i}.json"
            rec = load_json(name, read_data(name, LIMITS["entry"]))
            check_object(name, rec, {k: (t, True) for k, t in ENTRY_KEYS})
            check_sig(name, key)
            if keep_records:
                summary["records"].append(rec)
            summary["entries"].append({
                "index": i, "url": rec["request_url_no_query"] + rec["request_url_query"],
                "request_bodysize": rec["request_bodysize"],
                "response_bodysize": rec["response_bodysize"]})
            for kind in ("request", "response"):
                body_id = rec[f"{kind}_body_id"]
                if body_id is None:
                    continue
                bname = f"{i}.{kind}_body"
                if body_id in seen_ids:
                    raise FlapError(bname, f"body id {body_id} appears twice")
                seen_ids.add(body_id)
                size = rec[f"{kind}_bodysize"]
                if size is None:
                    raise FlapError(bname, f"{kind}_bodysize is null")
                read_data(bname, None, exact=int(size))
                check_sig(bname, key)
        summary.update({"meta": meta, "security_ids": sorted(sec["security_map"]),
                        "device_cn": first_cn(device),
                        "final_digest": state["digest"].hex()})
        return summary


# ---------------------------------------------------------------------------
# Fixtures: one valid bundle and one per rule broken.

def _swork_descriptor(origin):
    return {"version": 9, "stanza": [
        "", origin + "/", origin + "/sw.js", "true", "sw-cache-name", "0",
        "1700000000000", "1700000000000", "1700000000000", "0", "false"]}


def make_fixture(ca_dir, out, kind="valid"):
    chain = open(os.path.join(ca_dir, "chain.pem"), "rb").read()
    key = serialization.load_pem_private_key(
        open(os.path.join(ca_dir, "device_key.pem"), "rb").read(), None)
    meta, sec, entries = sample_bundle()
    t = {}
    if kind == "valid":
        pass
    elif kind == "swork":
        meta, sec, entries = sample_bundle(namespace="SWORK", name="sw-cache-name",
                                           sw=_swork_descriptor("http://127.0.0.1:8000"))
    elif kind == "empty":
        meta, sec, entries = sample_bundle(n=0)
    elif kind == "truncated":
        buf = io.BytesIO()
        write_flap(buf, chain, key, meta, sec, entries)
        data = buf.getvalue()
        open(out, "wb").write(data[:len(data) * 2 // 3])
        return
    elif kind == "reordered":
        t["swap"] = (4, 5)  # 0.json and 0.response_body
    elif kind == "oversized_meta":
        meta["cacheDescriptor"]["origin"] = "http://x" + "a" * 8200
    elif kind == "oversized_body":
        rec = entries[0][0]
        rec["response_bodysize"] -= 1
    elif kind == "wrong_digest":
        t["digest_data"] = {"0.json": b"not what the archive holds"}
    elif kind == "bad_signature":
        t["bad_sig"] = ("1.json",)
    elif kind == "wrong_version_entry":
        t["names"] = {"4": "3"}  # entry 2 names another format version
    elif kind == "wrong_algorithm":
        meta["signatureAlgorithm"] = "SHA1withECDSA"
    elif kind == "unknown_key":
        entries[0][0]["extra"] = 1
    elif kind == "byte_255":
        entries[0][0]["request_url_no_query_hash"][0] = 255
    elif kind == "duplicate_body_id":
        entries[1][0]["response_body_id"] = entries[0][0]["response_body_id"]
    elif kind == "hostile_count":
        meta["cacheDescriptor"]["number_of_entries"] = 10 ** 9
    elif kind == "zip_bomb":
        # 0.json claims nothing in particular, but inflates to 200 MB of
        # zeros: the reader must stop at the 512 KiB limit.
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = b"".join(z.compress(b"\0" * (1 << 20)) for _ in range(200)) + z.flush()
        t["zip"] = {"0.json": {"raw": bomb}}
    elif kind == "stored":
        # STORED entries with sizes in the local header: Java reads them.
        t["zip"] = {n: {"method": 0, "descriptor": False}
                    for n in ("META.json", "0.json", "0.response_body")}
    elif kind == "stored_with_descriptor":
        t["zip"] = {"0.json": {"method": 0, "descriptor": True}}
    elif kind == "encrypted":
        t["zip"] = {"0.json": {"flags_or": 1}}
    elif kind == "bzip2":
        t["zip"] = {"0.json": {"method": 12}}
    elif kind == "bad_utf8_name":
        t["names"] = {"META.json.sig": "META.json\udcff.sig"}
    elif kind == "credentials":
        rec = entries[0][0]
        rec["request_headers"] = sorted(
            [{"first": k, "second": v} for k, v in
             [("Accept", "*/*"), ("Authorization", "Basic eA=="),
              ("cookie", "a=1"), ("Proxy-Authorization", "x")]],
            key=lambda p: (p["first"], p["second"]))
        rec["response_headers"] = sorted(
            rec["response_headers"] +
            [{"first": "Set-Cookie", "second": "b=2"},
             {"first": "Cookie", "second": "kept"},
             {"first": "Date", "second": "Tue, 01 Dec 2026 10:00:00 GMT"}],
            key=lambda p: (p["first"], p["second"]))
    elif kind == "opaque":
        entries[2][0]["response_type"] = 4
        entries[2][0]["response_padding_size"] = 123456
    elif kind == "bad_crc":
        t["zip"] = {"0.json": {"crc_xor": 1}}
    elif kind == "trailing_cert_junk":
        chain = chain + b"\ngarbage"
    elif kind == "two_certs":
        chain = chain[:chain.rfind(b"\n-----BEGIN")]
    elif kind == "prefix":
        buf = io.BytesIO()
        write_flap(buf, chain, key, meta, sec, entries)
        open(out, "wb").write(b"#!/bin/sh\nexit 0\n" + buf.getvalue())
        return
    elif kind == "trailing_entries":
        buf = io.BytesIO()
        write_flap(buf, chain, key, meta, sec, entries, {"no_central": True})
        z = ZipOut(buf)
        z.count = 99
        z.add("ignored.txt", b"trailing entries are ignored")
        z.close()
        open(out, "wb").write(buf.getvalue())
        return
    else:
        raise SystemExit(f"unknown fixture kind {kind}")
    with open(out, "wb") as f:
        write_flap(f, chain, key, meta, sec, entries, t)


# kind -> (accepted?, the entry the first violation names)
KINDS = {
    "valid": (True, None), "swork": (True, None), "empty": (True, None),
    "trailing_entries": (True, None), "stored": (True, None),
    "opaque": (True, None), "credentials": (True, None),
    "stored_with_descriptor": (False, "0.json"), "encrypted": (False, "0.json"),
    "bzip2": (False, "0.json"), "bad_utf8_name": (False, None),
    "truncated": (False, None), "reordered": (False, "0.json"),
    "oversized_meta": (False, "META.json"),
    "oversized_body": (False, "0.response_body"),
    "wrong_digest": (False, "0.json.sig"), "bad_signature": (False, "1.json.sig"),
    "wrong_version_entry": (False, "4"), "wrong_algorithm": (False, "META.json"),
    "unknown_key": (False, "0.json"), "byte_255": (False, "0.json"),
    "duplicate_body_id": (False, "1.response_body"),
    "hostile_count": (False, "3.json"), "zip_bomb": (False, "0.json"),
    "bad_crc": (False, "0.json"), "trailing_cert_junk": (False, "CERTCHAIN.pem"),
    "two_certs": (False, "CERTCHAIN.pem"), "prefix": (False, "CERTCHAIN.pem"),
}
# Fixtures that need another PKI: signed by a chain under another root, or
# whose deployment CN is not the app id (made by flap_test.py).


def main(argv):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("ca")
    c.add_argument("dir")
    c.add_argument("--app-id", default=DEFAULT_APP_ID)
    c.add_argument("--device-cn", default="node-1")
    m = sub.add_parser("make")
    m.add_argument("ca_dir")
    m.add_argument("out")
    m.add_argument("--kind", default="valid")
    sub.add_parser("kinds")
    v = sub.add_parser("verify")
    v.add_argument("file")
    v.add_argument("--trust", required=True)
    v.add_argument("--app-id", default=DEFAULT_APP_ID)
    v.add_argument("--json", action="store_true")
    v.add_argument("--check-bodies", action="store_true",
                   help="also decode every body as Gecko's reader would")
    a = p.parse_args(argv)
    if a.cmd == "ca":
        make_ca(a.dir, a.app_id, a.device_cn)
    elif a.cmd == "make":
        make_fixture(a.ca_dir, a.out, a.kind)
    elif a.cmd == "kinds":
        for k, (ok, entry) in KINDS.items():
            print(k, "accepted" if ok else f"rejected at {entry}")
    elif a.cmd == "verify":
        bodies = {}
        sink = (lambda n, c: bodies.setdefault(n, bytearray()).extend(c)) \
            if a.check_bodies else None
        try:
            s = verify(a.file, open(a.trust, "rb").read(), a.app_id, sink)
            for n, b in bodies.items():
                try:
                    snappy_unframe(bytes(b))
                except ValueError as e:
                    raise FlapError(n, f"Gecko could not read this body: {e}")
        except FlapError as e:
            print(json.dumps({"ok": False, "entry": e.entry, "reason": e.reason})
                  if a.json else f"rejected: {e.entry}: {e.reason}")
            return 4
        cd = s["meta"]["cacheDescriptor"]
        if a.json:
            print(json.dumps({"ok": True, "origin": cd["origin"], "name": cd["name"],
                              "namespace": cd["namespace"],
                              "number_of_entries": cd["number_of_entries"],
                              "entries": s["entries"], "sizes": s["sizes"],
                              "meta": s["meta"], "device_cn": s["device_cn"]}))
        else:
            print(f"ok: {cd['namespace']} {cd['origin']} {cd['name']!r}, "
                  f"{cd['number_of_entries']} entries, signed by {s['device_cn']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
