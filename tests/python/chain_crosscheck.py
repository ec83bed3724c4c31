"""Cross-check minerfleet's offline-built set_commitment transactions and storage keys with the Python references
(local-chain.md section 7): bittensor-core decodes the extrinsic and recomputes the call bytes, the signer payload and
the storage keys independently; py-sr25519-bindings verifies the signature.

Usage: python chain_crosscheck.py CASES.json   (written by tests/chain_conformance.rs). Exit 0 and print "OK" when
every check passes; otherwise print what differs and exit 1.
"""
import json
import sys

import bittensor_core
import sr25519


def fail(msg):
    print(f"MISMATCH: {msg}")
    sys.exit(1)


def find(obj, key):
    """First value under `key` anywhere in a nested dict/list."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        for v in obj.values():
            r = find(v, key)
            if r is not None:
                return r
    elif isinstance(obj, list):
        for v in obj:
            r = find(v, key)
            if r is not None:
                return r
    return None


def main():
    spec = json.load(open(sys.argv[1]))
    metadata = open(spec["metadata"], "rb").read()
    rt = bittensor_core.Runtime(metadata, spec["spec_version"], spec["transaction_version"])
    genesis = bytes.fromhex(spec["genesis"])

    for case in spec["cases"]:
        name = case["name"]
        data = bytes.fromhex(case["data"])
        call = bytes(rt.compose_call(
            "Commitments", "set_commitment",
            {"netuid": case["netuid"], "info": {"fields": [{f"Raw{len(data)}": data}]}},
        ))
        if call.hex() != case["call"]:
            fail(f"{name}: call bytes: python {call.hex()} rust {case['call']}")

        era = case["era"]
        era_block_hash = bytes.fromhex(case["era_block_hash"])
        payload = bytes(rt.signature_payload(
            call, era=era, nonce=case["nonce"], tip=0, tip_asset_id=None,
            genesis_hash=genesis, era_block_hash=era_block_hash,
        ))
        if payload.hex() != case["signer_payload"]:
            fail(f"{name}: signer payload: python {payload.hex()} rust {case['signer_payload']}")

        xt = bytes.fromhex(case["extrinsic"])
        decoded = rt.decode_extrinsic(xt)
        text = json.dumps(decoded, default=lambda o: o.hex() if isinstance(o, (bytes, bytearray)) else str(o))
        if "set_commitment" not in text or "Commitments" not in text:
            fail(f"{name}: decoded extrinsic is not Commitments.set_commitment: {text}")
        nonce = find(decoded, "nonce")
        if nonce is not None and int(nonce) != case["nonce"]:
            fail(f"{name}: decoded nonce {nonce} != {case['nonce']}")
        tip = find(decoded, "tip")
        if tip is not None and int(tip) != 0:
            fail(f"{name}: decoded tip {tip} != 0")
        if case["public"] not in text and case["ss58"] not in text:
            fail(f"{name}: decoded signer is neither {case['ss58']} nor 0x{case['public']}: {text}")

        # The signature sits after 0x84, the 33-byte MultiAddress::Id and the 0x01 Sr25519 tag, behind the compact
        # length prefix; locate it from the public key rather than hard-coding the prefix length.
        pub = bytes.fromhex(case["public"])
        at = xt.find(b"\x00" + pub + b"\x01")
        if at < 0:
            fail(f"{name}: cannot locate the signer in the extrinsic")
        sig = xt[at + 34: at + 34 + 64]
        if not sr25519.verify(sig, payload, pub):
            fail(f"{name}: sr25519 signature does not verify against the python-computed payload")
        print(f"case {name}: call, payload, decode, signature OK")

    for key in spec["storage_keys"]:
        k = rt.storage_key(key["pallet"], key["item"], key["params"])
        k = bytes(k).hex() if not isinstance(k, str) else k.removeprefix("0x")
        if k != key["key"]:
            fail(f"storage key {key['pallet']}.{key['item']}{key['params']}: python {k} rust {key['key']}")
        print(f"storage key {key['pallet']}.{key['item']} OK")
    print("OK")


if __name__ == "__main__":
    main()
