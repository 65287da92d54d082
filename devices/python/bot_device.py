#!/usr/bin/env python3
"""Reference device signer of Blockchain of Things envelopes, for Linux gateways and Raspberry Pis.

It writes the canonical bytes of an envelope of the device profile (docs/device-profile.md),
signs them with Ed25519 (RFC 8032) over b"bot-envelope-v1\\n" followed by those bytes, and
returns the envelope JSON a gateway's bot-verify node accepts. Needs only the standard
library and the `cryptography` package (Debian: python3-cryptography).

    key = DeviceKey.generate()                        # on the device; only key.did leaves it
    dev = Device(key, FileSeqStore("/var/lib/sensor/seq"))
    envelope = dev.sign({"centi_celsius": 2150, "unit": "°C"}, topic="plant/line-1/temp")
    # publish `envelope` (bytes of JSON) to the broker, e.g. with paho-mqtt or mosquitto_pub

Command line (the same as the C example):

    bot_device.py keygen KEYFILE                      new seed (hex, mode 0600), prints its did:key
    bot_device.py did KEYFILE                         prints the did:key of a key file
    bot_device.py sign KEYFILE SEQFILE TOPIC [COUNT [BLOCK]]
                                                      prints COUNT envelopes (default 1), one per line
"""
import os
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DOMAIN = b"bot-envelope-v1\n"
MAX_SAFE_INT = 2**53 - 1  # I-JSON, RFC 7493 section 2.2
MAX_ENVELOPE = 65535  # the ledger's default entry limit (a tlog-tiles bundle's uint16 length)
MAX_TOPIC_BYTES = 4096
MAX_KEY_LEN = 64

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_SHORT_ESCAPES = {0x22: '\\"', 0x5C: "\\\\", 0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}


class ProfileError(ValueError):
    """A value outside the device profile; `code` is one of: key, order, utf8, range, topic, kind, size, type, store."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _base58(b):
    n = int.from_bytes(b, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(b) - len(b.lstrip(b"\0"))) + out


def did_key(public_key):
    """The did:key of a 32-byte Ed25519 public key: multicodec 0xed01, base58btc ('z')."""
    return "did:key:z" + _base58(b"\xed\x01" + bytes(public_key))


def _b64(b, url):
    import base64

    return (base64.urlsafe_b64encode(b).rstrip(b"=") if url else base64.b64encode(b)).decode("ascii")


def _utf8(s, what):
    if not isinstance(s, str):
        raise ProfileError("type", f"{what} must be a str")
    try:
        return s.encode("utf-8")  # strict: a lone surrogate is refused
    except UnicodeEncodeError:
        raise ProfileError("utf8", f"{what} is not well-formed Unicode (lone surrogate)") from None


def json_string(s, what="string"):
    """A JSON string as RFC 8785 section 3.2.2.2 writes it: only '"', '\\' and U+0000..U+001F escaped."""
    _utf8(s, what)
    out = ['"']
    for ch in s:
        c = ord(ch)
        if c in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[c])
        elif c < 0x20:
            out.append("\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _check_key(k):
    if not isinstance(k, str) or not 1 <= len(k) <= MAX_KEY_LEN or any(not (0x21 <= ord(c) <= 0x7E) or c in '"\\' for c in k):
        raise ProfileError("key", f"payload key {k!r} must be 1-64 printable ASCII characters without '\"' or '\\'")


def _int(v):
    if not -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
        raise ProfileError("range", f"integer {v} is outside -(2^53-1)..2^53-1")
    return str(v)


def payload_object(members):
    """Canonical JSON text of a payload object: a dict (sorted here) or a list of (key, value) pairs in ascending key order.

    Values: int (|n| <= 2^53-1), str, bool, None, or a list of ints. No floats: send scaled integers.
    """
    if isinstance(members, dict):
        pairs = sorted(members.items(), key=lambda kv: kv[0] if isinstance(kv[0], str) else "")
    else:
        pairs = list(members)
    parts = []
    last = None
    for k, v in pairs:
        _check_key(k)
        # ASCII keys: Python's str order is RFC 8785's UTF-16 order.
        if last is not None and k <= last:
            raise ProfileError("order", f"payload key {k!r} is not above {last!r} (ascending order, each once)")
        last = k
        if v is None:
            text = "null"
        elif isinstance(v, bool):
            text = "true" if v else "false"
        elif isinstance(v, int):
            text = _int(v)
        elif isinstance(v, str):
            text = json_string(v, f"payload.{k}")
        elif isinstance(v, (list, tuple)) and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
            text = "[" + ",".join(_int(x) for x in v) + "]"
        else:
            raise ProfileError("type", f"payload.{k} must be an int, str, bool, None or a list of ints (no floats: scale them)")
        parts.append(json_string(k) + ":" + text)
    return "{" + ",".join(parts) + "}"


def _check_topic(topic):
    b = _utf8(topic, "topic")
    if not 1 <= len(b) <= MAX_TOPIC_BYTES:
        raise ProfileError("topic", f"topic must be 1-{MAX_TOPIC_BYTES} bytes of UTF-8")
    for ch in topic:
        c = ord(ch)
        if c < 0x20 or 0x7F <= c <= 0x9F or ch in "+#" or 0xFDD0 <= c <= 0xFDEF or (c & 0xFFFE) == 0xFFFE:
            raise ProfileError("topic", f"topic must not contain U+{c:04X} (controls, non-characters, '+', '#': MQTT 3.1.1 1.5.3, 4.7)")


def _check_kind(kind):
    ok = isinstance(kind, str) and 1 <= len(kind) <= 32 and "a" <= kind[0] <= "z"
    if not ok or any(not (c.isascii() and (c.islower() or c.isdigit() or c in "_-")) for c in kind):
        raise ProfileError("kind", "kind must match [a-z][a-z0-9_-]{0,31}")


def _check_uint(v, what):
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_SAFE_INT:
        raise ProfileError("range", f"{what} must be an integer in 0..2^53-1")


def _members(did, seq, ts, payload, kind, topic):
    """The envelope's members without sig, in RFC 8785 order (enc, kind, payload, seq, signer, topic, ts, v)."""
    _check_kind(kind)
    _check_uint(seq, "seq")
    _check_uint(ts, "ts")
    if topic is not None:
        _check_topic(topic)
    binary = isinstance(payload, (bytes, bytearray, memoryview))
    m = []
    if binary:
        m.append('"enc":"base64"')
    m.append('"kind":' + json_string(kind))
    m.append('"payload":' + ('"' + _b64(bytes(payload), False) + '"' if binary else payload_object(payload)))
    m.append('"seq":' + str(seq))
    m.append('"signer":' + json_string(did))
    if topic is not None:
        m.append('"topic":' + json_string(topic))
    m.append('"ts":' + str(ts))
    m.append('"v":1')
    return m


def envelope_body(did, seq, ts, payload, kind="reading", topic=None):
    """The canonical bytes of the envelope without sig (what is signed, after DOMAIN)."""
    return ("{" + ",".join(_members(did, seq, ts, payload, kind, topic)) + "}").encode("utf-8")


class DeviceKey:
    """An Ed25519 key pair. The seed stays inside; repr and str show only the did:key."""

    def __init__(self, private_key):
        self._key = private_key
        raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_key = raw
        self.did = did_key(raw)

    @classmethod
    def from_seed(cls, seed):
        """The key pair of a 32-byte RFC 8032 seed."""
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    @classmethod
    def generate(cls):
        """A fresh key pair from the OS's random numbers."""
        return cls(Ed25519PrivateKey.generate())

    def seed(self):
        """The 32-byte seed, to store on the device (never to send)."""
        return self._key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())

    def sign(self, message):
        """Ed25519 signature of message (RFC 8032 section 5.1.6)."""
        return self._key.sign(message)

    def __repr__(self):
        return f"DeviceKey({self.did})"


def sign_envelope(key, seq, ts, payload, kind="reading", topic=None):
    """The envelope (its JSON as bytes: canonical, with sig) signing payload as this seq and ts.

    payload: bytes (sent as base64 with "enc":"base64") or an object for payload_object.
    """
    members = _members(key.did, seq, ts, payload, kind, topic)
    body = ("{" + ",".join(members) + "}").encode("utf-8")
    sig = _b64(key.sign(DOMAIN + body), True)
    at = 4 if members[0].startswith('"enc"') else 3  # "sig" sorts between "seq" and "signer"
    leaf = ("{" + ",".join(members[:at] + ['"sig":"' + sig + '"'] + members[at:]) + "}").encode("utf-8")
    if len(leaf) > MAX_ENVELOPE:
        raise ProfileError("size", f"envelope is {len(leaf)} bytes, above {MAX_ENVELOPE}")
    return leaf


class FileSeqStore:
    """A seq bound in a file, replaced atomically (write, fsync, rename, fsync the folder)."""

    def __init__(self, path):
        self.path = path

    def load(self):
        """The stored bound, or None when nothing was stored yet."""
        try:
            with open(self.path, "r", encoding="ascii") as f:
                return int(f.read().strip())
        except FileNotFoundError:
            return None

    def save(self, bound):
        """Store the bound durably before returning."""
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"{bound}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


class Device:
    """A key and its seq: `block` seq numbers are reserved per store write, so a seq is never used twice, even across a power cut."""

    def __init__(self, key, store, block=16):
        if not isinstance(block, int) or block < 1:
            raise ValueError("block must be a positive integer")
        self.key = key
        self.store = store
        self.block = block
        bound = store.load()
        self.next = 0 if bound is None else bound
        self.bound = self.next
        if isinstance(self.next, bool) or not isinstance(self.next, int) or not 0 <= self.next <= MAX_SAFE_INT + 1:
            raise ProfileError("store", f"stored seq bound {self.next!r} is not in 0..2^53")

    def sign(self, payload, ts=None, topic=None, kind="reading"):
        """Sign the next envelope (ts defaults to the clock, in ms since the epoch); returns its JSON bytes."""
        if self.next > MAX_SAFE_INT:
            raise ProfileError("range", "seq exhausted (2^53-1)")
        if self.next >= self.bound:
            bound = min(self.next + self.block, MAX_SAFE_INT + 1)
            try:
                self.store.save(bound)
            except OSError as e:
                raise ProfileError("store", f"seq store failed: {e.strerror}") from None
            self.bound = bound
        env = sign_envelope(self.key, self.next, int(time.time() * 1000) if ts is None else ts, payload, kind, topic)
        self.next += 1
        return env


def _read_key(path):
    if os.stat(path).st_mode & 0o077:
        raise SystemExit(f"bot_device: {path} is readable by others; chmod 600 it")
    with open(path, "r", encoding="ascii") as f:
        return DeviceKey.from_seed(bytes.fromhex(f.read().strip()))


def main(argv):
    """The command line: keygen, did, sign (see the module's doc)."""
    if len(argv) == 3 and argv[1] == "keygen":
        key = DeviceKey.generate()
        fd = os.open(argv[2], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.seed().hex() + "\n")
        print(key.did)
        return 0
    if len(argv) == 3 and argv[1] == "did":
        print(_read_key(argv[2]).did)
        return 0
    if 5 <= len(argv) <= 7 and argv[1] == "sign":
        count = int(argv[5]) if len(argv) >= 6 else 1
        block = int(argv[6]) if len(argv) >= 7 else 16
        dev = Device(_read_key(argv[2]), FileSeqStore(argv[3]), block)
        out = sys.stdout.buffer
        for i in range(count):
            payload = {"centi_celsius": 1950 + (i * 41) % 150, "n": i, "sensor": "example-py", "unit": "°C"}
            out.write(dev.sign(payload, topic=argv[4]) + b"\n")
        out.flush()
        return 0
    sys.stderr.write("usage: bot_device.py keygen KEYFILE | did KEYFILE | sign KEYFILE SEQFILE TOPIC [COUNT [BLOCK]]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
