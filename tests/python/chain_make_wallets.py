"""Make real btcli wallet directories with the Python bittensor-wallet (conformance check (c), local-chain.md section 7):
one plain hotkey keyfile and one $NACL-encrypted one, each from a fresh mnemonic, plus one from a dev URI. Prints a
JSON list of {wallet, hotkey, ss58, public, encrypted} for the Rust loader to compare against.

Usage: python chain_make_wallets.py WALLETS_DIR PASSWORD
"""
import json
import sys

from bittensor_wallet import Keypair, Wallet


def main():
    path, password = sys.argv[1], sys.argv[2]
    made = []
    for wallet, hotkey, encrypted in [("plainw", "h-plain", False), ("naclw", "h-nacl", True)]:
        mnemonic = Keypair.generate_mnemonic(12)
        w = Wallet(name=wallet, hotkey=hotkey, path=path)
        w.regenerate_hotkey(
            mnemonic=mnemonic, use_password=encrypted, overwrite=True, suppress=True,
            hotkey_password=password if encrypted else None,
        )
        kp = Keypair.create_from_mnemonic(mnemonic)
        made.append({"wallet": wallet, "hotkey": hotkey, "ss58": kp.ss58_address,
                     "public": kp.public_key.hex(), "encrypted": encrypted})
    w = Wallet(name="uriw", hotkey="h-eve", path=path)
    w.create_hotkey_from_uri("//Eve", use_password=False, overwrite=True, suppress=True)
    kp = Keypair.create_from_uri("//Eve")
    made.append({"wallet": "uriw", "hotkey": "h-eve", "ss58": kp.ss58_address,
                 "public": kp.public_key.hex(), "encrypted": False})
    print(json.dumps(made))


if __name__ == "__main__":
    main()
