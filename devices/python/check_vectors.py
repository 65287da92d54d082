#!/usr/bin/env python3
"""Test driver (not part of the signer): signs every case of test/vectors/device-profile.json
with bot_device and prints {"NAME": {"ok": HEX} | {"err": CODE}} as JSON, for
test/integration/device-signers.test.ts to compare with the vectors."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bot_device  # noqa: E402


def payload_of(p):
    if "bytes" in p:
        return bytes.fromhex(p["bytes"])
    if "bytesFill" in p:
        byte, count = p["bytesFill"]
        return bytes([byte]) * count
    pairs = []
    for key, typ, value in p["fields"]:
        if typ == "int":
            pairs.append((key, int(value)))
        elif typ == "ints":
            pairs.append((key, [int(x) for x in value]))
        elif typ == "str":
            pairs.append((key, value))
        elif typ == "strhex":
            try:
                pairs.append((key, bytes.fromhex(value).decode("utf-8")))  # strict: ill-formed UTF-8 is refused here
            except UnicodeDecodeError:
                raise bot_device.ProfileError("utf8", f"payload.{key} is not well-formed UTF-8") from None
        elif typ == "bool":
            pairs.append((key, bool(value)))
        elif typ == "null":
            pairs.append((key, None))
        else:
            raise ValueError(typ)
    return pairs


def main():
    with open(sys.argv[1], "r", encoding="utf-8") as f:
        vectors = json.load(f)
    out = {}
    for case in vectors["valid"] + vectors["invalid"]:
        try:
            key = bot_device.DeviceKey.from_seed(bytes.fromhex(case["seed"]))
            env = bot_device.sign_envelope(
                key, int(case["seq"]), int(case["ts"]), payload_of(case["payload"]), case.get("kind", "reading"), case.get("topic")
            )
            out[case["name"]] = {"ok": env.hex(), "did": key.did}
        except bot_device.ProfileError as e:
            out[case["name"]] = {"err": e.code}
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
