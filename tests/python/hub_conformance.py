"""Conformance of our Hub-compatible server with the official `huggingface_hub` client.

Run by tests/hub_server_python.rs against a server it started. The environment (HF_ENDPOINT, HF_TOKEN,
HF_HUB_DISABLE_XET=1, HF_HOME, ...) is set by the caller BEFORE this file imports huggingface_hub, because the
library reads it at import time. Argument: a scratch directory. Exits non-zero (with a traceback) on any mismatch.
"""

import hashlib
import os
import pathlib
import sys

assert os.environ.get("HF_HUB_DISABLE_XET") == "1", "HF_HUB_DISABLE_XET=1 must be set before import"

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download, snapshot_download  # noqa: E402
from huggingface_hub.errors import (  # noqa: E402
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

work = pathlib.Path(sys.argv[1])
multipart_size = int(sys.argv[2]) if len(sys.argv) > 2 else 5 * 1024 * 1024 + 4321
api = HfApi()
anon = HfApi(token=False)
REPO = "tester/conformance"


def step(name):
    print(f"conformance: {name}", flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def same_bytes(a, b):
    assert pathlib.Path(a).read_bytes() == pathlib.Path(b).read_bytes(), f"{a} and {b} differ"


def expect(exc_type, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    raise AssertionError(f"{fn.__name__} did not raise {exc_type.__name__}")


# ---- local files ----
src = work / "src"
(src / "folder" / "sub").mkdir(parents=True)
(src / "config.json").write_text('{"hello": "world"}\n')
(src / "small.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + os.urandom(100_000))
(src / "big.bin").write_bytes(os.urandom(multipart_size))
(src / "folder" / "a.txt").write_text("alpha\n")
(src / "folder" / "sub" / "b.txt").write_text("beta\n")
(src / "folder" / "README.md").write_text("---\nlicense: mit\n---\n# hi\n")
(src / "folder" / "weights.safetensors").write_bytes(os.urandom(300_000))

step("whoami")
me = api.whoami()
assert me["name"] == "tester", me

step("create_repo private, then exist_ok (409 path)")
url = api.create_repo(REPO, private=True)
assert str(url).endswith("/tester/conformance"), url
api.create_repo(REPO, exist_ok=True)
expect(HfHubHTTPError, api.create_repo, REPO)
assert api.model_info(REPO).private is True
expect(RepositoryNotFoundError, anon.model_info, REPO)

step("upload_file: regular, LFS basic, LFS multipart")
api.upload_file(path_or_fileobj=str(src / "config.json"), path_in_repo="config.json", repo_id=REPO)
api.upload_file(path_or_fileobj=str(src / "small.safetensors"), path_in_repo="small.safetensors", repo_id=REPO)
info = api.upload_file(path_or_fileobj=str(src / "big.bin"), path_in_repo="weights/big.bin", repo_id=REPO)
assert len(info.oid) == 40, info

step("upload_file of an unchanged file makes no commit")
head = api.model_info(REPO).sha
api.upload_file(path_or_fileobj=str(src / "big.bin"), path_in_repo="weights/big.bin", repo_id=REPO)
assert api.model_info(REPO).sha == head

step("upload_folder")
api.upload_folder(folder_path=str(src / "folder"), path_in_repo="fold", repo_id=REPO)

step("list_repo_tree")
entries = {e.path: e for e in api.list_repo_tree(REPO, recursive=True)}
expected_files = {
    ".gitattributes", "config.json", "small.safetensors", "weights/big.bin", "fold/a.txt", "fold/sub/b.txt",
    "fold/README.md", "fold/weights.safetensors",
}
files = {p for p, e in entries.items() if type(e).__name__ == "RepoFile"}
assert files == expected_files, files
assert {"weights", "fold", "fold/sub"} <= set(entries), entries.keys()
big = entries["weights/big.bin"]
assert big.size == multipart_size and big.lfs is not None and big.lfs.sha256 == sha256(src / "big.bin"), big
assert entries["config.json"].lfs is None
top = {e.path for e in api.list_repo_tree(REPO)}
assert "fold" in top and "fold/a.txt" not in top, top

step("get_paths_info (form body)")
got = {e.path for e in api.get_paths_info(REPO, ["config.json", "weights/big.bin", "nope", "fold"])}
assert got == {"config.json", "weights/big.bin", "fold"}, got

step("model_info with files_metadata")
mi = api.model_info(REPO, files_metadata=True)
sib = {s.rfilename: s for s in mi.siblings}
assert sib["weights/big.bin"].lfs.sha256 == sha256(src / "big.bin")
assert sib["config.json"].size == (src / "config.json").stat().st_size

step("hf_hub_download")
for repo_path, local in [
    ("config.json", "config.json"),
    ("small.safetensors", "small.safetensors"),
    ("weights/big.bin", "big.bin"),
    ("fold/sub/b.txt", "folder/sub/b.txt"),
]:
    same_bytes(hf_hub_download(REPO, repo_path, cache_dir=str(work / "cache1")), src / local)
expect(RemoteEntryNotFoundError, hf_hub_download, REPO, "missing.txt", cache_dir=str(work / "cache1"))
expect(RevisionNotFoundError, hf_hub_download, REPO, "config.json", revision="nobranch", cache_dir=str(work / "c0"))

step("snapshot_download")
snap = pathlib.Path(snapshot_download(REPO, cache_dir=str(work / "cache2")))
for repo_path, local in [
    ("config.json", "config.json"),
    ("small.safetensors", "small.safetensors"),
    ("weights/big.bin", "big.bin"),
    ("fold/a.txt", "folder/a.txt"),
    ("fold/sub/b.txt", "folder/sub/b.txt"),
    ("fold/README.md", "folder/README.md"),
    ("fold/weights.safetensors", "folder/weights.safetensors"),
]:
    same_bytes(snap / repo_path, src / local)

step("update_repo_settings: public, then private again")
api.update_repo_settings(REPO, visibility="public")
assert anon.model_info(REPO).private is False
same_bytes(hf_hub_download(REPO, "config.json", token=False, cache_dir=str(work / "cache3")), src / "config.json")
api.update_repo_settings(REPO, private=True)
expect(RepositoryNotFoundError, anon.model_info, REPO)

step("create_commit with a stale parent_commit: 412")
old = api.list_repo_commits(REPO)[-1].commit_id
err = expect(
    HfHubHTTPError,
    api.create_commit,
    REPO,
    [CommitOperationAdd(path_in_repo="x.txt", path_or_fileobj=b"x")],
    commit_message="stale",
    parent_commit=old,
)
assert err.response.status_code == 412, err

step("create_commit with a delete and the current parent")
head = api.model_info(REPO).sha
api.create_commit(
    REPO,
    [CommitOperationDelete(path_in_repo="config.json"), CommitOperationAdd(path_in_repo="y.txt", path_or_fileobj=b"y\n")],
    commit_message="swap",
    parent_commit=head,
)
names = {e.path for e in api.list_repo_tree(REPO, recursive=True)}
assert "config.json" not in names and "y.txt" in names, names
refs = api.list_repo_refs(REPO)
assert refs.branches[0].target_commit == api.model_info(REPO).sha

step("branches and tags")
api.create_branch(REPO, branch="dev")
api.upload_file(path_or_fileobj=b"dev only\n", path_in_repo="dev.txt", repo_id=REPO, revision="dev")
api.create_tag(REPO, tag="v1", revision="dev")
same = pathlib.Path(hf_hub_download(REPO, "dev.txt", revision="v1", cache_dir=str(work / "cache4")))
assert same.read_bytes() == b"dev only\n"
expect(RemoteEntryNotFoundError, hf_hub_download, REPO, "dev.txt", cache_dir=str(work / "cache4"))
refs = api.list_repo_refs(REPO)
assert {b.name for b in refs.branches} == {"main", "dev"} and [t.name for t in refs.tags] == ["v1"], refs
api.delete_tag(REPO, tag="v1")
api.delete_branch(REPO, branch="dev")
assert {b.name for b in api.list_repo_refs(REPO).branches} == {"main"}

step("move_repo there and back")
sha = api.model_info(REPO).sha
api.move_repo(from_id=REPO, to_id="tester/moved")
assert api.model_info("tester/moved").sha == sha
expect(RepositoryNotFoundError, api.model_info, REPO)
api.move_repo(from_id="tester/moved", to_id=REPO)

step("delete_repo, then missing_ok")
api.delete_repo(REPO)
api.delete_repo(REPO, missing_ok=True)
expect(RepositoryNotFoundError, api.model_info, REPO)

print("CONFORMANCE OK", flush=True)
