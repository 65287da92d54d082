"""Decrypt a confidential scope's sealed entries as a partner without Node-RED would, following
README "The wire format (decrypting without Node-RED)" alone, with another HPKE implementation
(pyca/cryptography >= 47: OpenSSL and Rust, not @hpke/core).

stdin: {"origin", "partner": <did>, "secret": <base64 X25519 secret>, "entries": [<envelope>...]}
stdout: one JSON line per sealed entry: the device's envelope, or {"error": ...}.
Ed25519 signatures are not checked here (the test checks them); this checks the formats.
"""
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def jcs(o):
    # RFC 8785 for these objects (strings, integers, lists): sorted keys, no spaces, UTF-8.
    return json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


d = json.load(sys.stdin)
sk = X25519PrivateKey.from_private_bytes(base64.b64decode(d["secret"]))
suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)
epochs, keys = {}, {}
for e in d["entries"]:
    p = e["payload"]
    if e["kind"] == "epoch":
        epochs[(p["scope"], p["epoch"])] = p
    if e["kind"] == "keywrap" and p["reader"] == d["partner"]:
        assert p["suite"] == "DHKEM-X25519-HKDF-SHA256/HKDF-SHA256/AES-128-GCM"
        info = "bot-keywrap-v1\n" + jcs({"epoch": p["epoch"], "key": p["recipient"]["payload"]["key"], "ledger": p["ledger"],
                                         "reader": p["reader"], "scope": p["scope"], "suite": p["suite"]})
        key = suite.decrypt(base64.b64decode(p["enc"]) + base64.b64decode(p["ct"]), sk, info.encode())
        kid = base64.urlsafe_b64encode(hashlib.sha256(b"bot-scope-key-v1\n" + key).digest()).rstrip(b"=").decode()
        assert kid == epochs[(p["scope"], p["epoch"])]["kid"], "the unwrapped key is not the epoch's kid"
        keys[(p["scope"], p["epoch"])] = key
for e in d["entries"]:
    if e["kind"] != "sealed":
        continue
    p = e["payload"]
    ad = {"alg": p["alg"], "epoch": p["epoch"], "kind": e["kind"], "ledger": d["origin"], "scope": p["scope"],
          "seq": e["seq"], "signer": e["signer"], "ts": e["ts"]}
    if "topic" in e:
        ad["topic"] = e["topic"]
    k = keys.get((p["scope"], p["epoch"]))
    if k is None:
        print(json.dumps({"error": "E_NO_KEY"}))
        continue
    pt = AESGCM(k).decrypt(base64.b64decode(p["nonce"]), base64.b64decode(p["ct"]), ("bot-sealed-v1\n" + jcs(ad)).encode())
    print(json.dumps({"leaf": pt.decode("utf-8")}, ensure_ascii=False))
