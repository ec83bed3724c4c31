"""Conformance of our Hub-compatible server with the official `huggingface_hub` client in its DEFAULT mode: with
`hf_xet` installed and no `HF_HUB_DISABLE_XET`, so every LFS file goes through Xet (write token, CAS, commit by
sha256) and downloads of Xet files go through the CAS too.

Run by tests/it/hub_server_python.rs against a server it started (HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_XET_CACHE set
by the caller before import). Arguments: a scratch directory, the shard size in bytes, the number of shards.
Prints `XET CONFORMANCE OK` at the end; exits non-zero with a traceback on any mismatch.
"""

import hashlib
import json
import os
import pathlib
import sys

assert "HF_HUB_DISABLE_XET" not in os.environ, "this script checks the default (Xet) mode"

from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download  # noqa: E402
from huggingface_hub.utils._runtime import is_xet_available  # noqa: E402

assert is_xet_available(), "hf_xet must be installed (scripts/setup-python pins it)"
assert not constants.HF_HUB_DISABLE_XET

work = pathlib.Path(sys.argv[1])
shard_size = int(sys.argv[2])
shards = int(sys.argv[3])
api = HfApi()
REPO = "tester/xetmodel"


def step(name):
    print(f"xet conformance: {name}", flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def same_bytes(a, b):
    assert sha256(a) == sha256(b), f"{a} and {b} differ"


# ---- a sharded model ----
model = work / "model"
model.mkdir(parents=True)
(model / "config.json").write_text('{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}\n')
weight_map = {}
for i in range(1, shards + 1):
    name = f"model-{i:05d}-of-{shards:05d}.safetensors"
    header = json.dumps({"__metadata__": {"format": "pt"}}).encode()
    header += b" " * (-len(header) % 8)
    with open(model / name, "wb") as f:
        f.write(len(header).to_bytes(8, "little") + header)
        left = shard_size
        while left > 0:
            n = min(left, 8 << 20)
            f.write(os.urandom(n))
            left -= n
    weight_map[f"layer{i}.weight"] = name
(model / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
single = work / "single.safetensors"
single.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + os.urandom(3 << 20))

step("create_repo")
api.create_repo(REPO, private=True)

step("upload_file (Xet)")
info = api.upload_file(path_or_fileobj=str(single), path_in_repo="extra/single.safetensors", repo_id=REPO)
assert len(info.oid) == 40, info

step("upload_folder (sharded model, Xet)")
api.upload_folder(folder_path=str(model), repo_id=REPO, commit_message="sharded model")

step("list_repo_tree: LFS entries carry xetHash")
entries = {e.path: e for e in api.list_repo_tree(REPO, recursive=True) if type(e).__name__ == "RepoFile"}
for i in range(1, shards + 1):
    e = entries[f"model-{i:05d}-of-{shards:05d}.safetensors"]
    assert e.lfs is not None and e.lfs.sha256 == sha256(model / e.path), e
    assert e.xet_hash and len(e.xet_hash) == 64, e
assert entries["extra/single.safetensors"].xet_hash, entries["extra/single.safetensors"]

step("hf_hub_download (Xet)")
same_bytes(hf_hub_download(REPO, "extra/single.safetensors", cache_dir=str(work / "c1")), single)
shard1 = f"model-00001-of-{shards:05d}.safetensors"
same_bytes(hf_hub_download(REPO, shard1, cache_dir=str(work / "c1")), model / shard1)

step("snapshot_download (Xet)")
snap = pathlib.Path(snapshot_download(REPO, cache_dir=str(work / "c2")))
for p in model.iterdir():
    same_bytes(snap / p.name, p)
same_bytes(snap / "extra/single.safetensors", single)

step("re-upload of the unchanged folder: no new commit")
head = api.model_info(REPO).sha
api.upload_folder(folder_path=str(model), repo_id=REPO, commit_message="again")
assert api.model_info(REPO).sha == head

step("another user's files stay invisible to an anonymous client")
anon = HfApi(token=False)
try:
    anon.model_info(REPO)
    raise AssertionError("a private repo was visible anonymously")
except Exception as e:  # noqa: BLE001
    assert type(e).__name__ == "RepositoryNotFoundError", repr(e)

print("XET CONFORMANCE OK", flush=True)
