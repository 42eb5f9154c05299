"""A public verifier for the open ledger, using only HTTP and the pure Merkle/note code.

    python -m app.ledger.verify BASE_URL --vkey VKEY [--state FILE] [--check-inclusion [N]]

It verifies the signed checkpoint against VKEY (obtained out of band, not trusted from the server),
downloads every entry, checks each leaf is the canonical JSON of its entry and the indices are
dense, recomputes the root and compares it with the checkpoint, and checks a consistency proof from
the last checkpoint it saw (kept in the state file). Exit 0: verified; 1: a check failed (the
message names it); 2: network or usage error.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import random
import sys
from pathlib import Path

import requests

from app.ledger import merkle, note
from app.ledger.canonical import canonical  # pure: the verifier runs without the app

PAGE = 1000                       # the server's maximum `limit`
DEFAULT_STATE = "~/.weixinyuan-ledger-state.json"
TIMEOUT = 30


class VerifyFailed(Exception):
    """A check failed: the ledger (or the server) is not what it claims. Exit 1."""


class UsageError(Exception):
    """Network trouble, a bad argument or an unreadable state file: nothing was judged. Exit 2."""


class Client:
    def __init__(self, base_url: str) -> None:
        base = base_url.rstrip("/")
        self.base = base if base.endswith("/api/v1") else base + "/api/v1"
        self.http = requests.Session()

    def get(self, path: str, **params) -> requests.Response:
        url = f"{self.base}/ledger/{path}"
        try:
            res = self.http.get(url, params=params or None, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise UsageError(f"cannot reach {url}: {exc}") from exc
        if res.status_code != 200:
            raise UsageError(f"GET {res.url} answered {res.status_code}: {res.text[:300]}")
        return res

    def json(self, path: str, **params) -> dict:
        res = self.get(path, **params)
        try:
            return res.json()
        except ValueError as exc:
            raise VerifyFailed(f"GET {res.url} did not return JSON") from exc


def load_state(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        return {"origin": state.get("origin"), "size": int(state["size"]),
                "root": base64.b64decode(state["root"], validate=True)}
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise UsageError(f"state file {path} is unreadable: {exc}") from exc


def save_state(path: Path, origin: str, size: int, root: bytes, checkpoint: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"origin": origin, "size": size,
                               "root": base64.b64encode(root).decode(),
                               "checkpoint": checkpoint}, ensure_ascii=False, indent=1) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)   # never leave a half-written state behind


def fetch_checkpoint(client: Client, vkey: str) -> tuple[str, str, int, bytes]:
    text = client.get("checkpoint").content.decode("utf-8", errors="replace")
    try:
        body = note.verify_note(text, vkey)
    except note.NoteError as exc:
        raise VerifyFailed(f"checkpoint signature check failed / 检查点签名无效: {exc}") from exc
    try:
        origin, size, root = note.parse_checkpoint(body)
    except note.NoteError as exc:
        raise VerifyFailed(f"checkpoint body is malformed: {exc}") from exc
    if origin != note.parse_verifier_key(vkey)[0]:
        raise VerifyFailed(f"checkpoint origin {origin!r} is not the key's name")
    return text, origin, size, root


def leaf_hashes(client: Client, size: int) -> list[bytes]:
    """Download entries 0..size-1; check indices are dense and each leaf is its entry's bytes."""
    hashes: list[bytes] = []
    while len(hashes) < size:
        start = len(hashes)
        page = client.json("entries", start=start, limit=min(PAGE, size - start))
        items = page.get("items") or []
        if not items:
            raise VerifyFailed(f"entries end at index {start}, but the checkpoint has {size} "
                               f"(index check: missing entry {start})")
        for item in items[:size - start]:
            expected = len(hashes)
            if item.get("index") != expected:
                raise VerifyFailed(f"index check failed: expected entry {expected}, "
                                   f"got index {item.get('index')!r}")
            try:
                leaf = base64.b64decode(item["leaf_b64"], validate=True)
            except (KeyError, TypeError, binascii.Error) as exc:
                raise VerifyFailed(f"entry {expected}: leaf_b64 is missing or not base64") from exc
            if not isinstance(item.get("entry"), dict) or leaf != canonical(item["entry"]):
                raise VerifyFailed(f"leaf/entry check failed at index {expected}: leaf bytes are "
                                   "not the canonical JSON of the entry shown")
            hashes.append(merkle.leaf_hash(leaf))
    return hashes


def _hashes(body: dict, what: str) -> list[bytes]:
    try:
        return [bytes.fromhex(h) for h in body["hashes"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise VerifyFailed(f"{what} proof is malformed") from exc


def check_consistency(client: Client, prev: dict, size: int, root: bytes) -> None:
    if prev["size"] > size:
        raise VerifyFailed(f"consistency check failed: checkpoint size {size} is smaller than the "
                           f"size {prev['size']} seen before (the log shrank or forked)")
    if prev["size"] == 0:
        return
    proof = [] if prev["size"] == size else _hashes(
        client.json("proof/consistency", first=prev["size"], second=size), "consistency")
    try:
        merkle.check_consistency(prev["size"], size, prev["root"], root, proof)
    except merkle.ProofError as exc:
        raise VerifyFailed(f"consistency check failed from size {prev['size']} to {size}: "
                           f"{exc}") from exc


def check_inclusion(client: Client, hashes: list[bytes], root: bytes, sample: int) -> int:
    size = len(hashes)
    indices = sorted({0, size - 1} | set(random.sample(range(size), min(sample, size))))
    for index in indices:
        proof = _hashes(client.json("proof/inclusion", index=index, tree_size=size), "inclusion")
        try:
            merkle.check_inclusion(hashes[index], index, size, proof, root)
        except merkle.ProofError as exc:
            raise VerifyFailed(f"inclusion check failed at index {index}: {exc}") from exc
    return len(indices)


def verify(base_url: str, vkey: str, state_path: Path, inclusion_sample: int = 0) -> str:
    """Run every check; return the success summary or raise VerifyFailed / UsageError."""
    try:
        note.parse_verifier_key(vkey)
    except note.NoteError as exc:
        raise UsageError(f"--vkey is not a verifier key: {exc}") from exc
    prev = load_state(state_path)
    client = Client(base_url)
    text, origin, size, root = fetch_checkpoint(client, vkey)
    if prev and prev["origin"] not in (None, origin):
        raise VerifyFailed(f"state file is for log {prev['origin']!r}, checkpoint is {origin!r}")
    if prev:
        check_consistency(client, prev, size, root)
    hashes = leaf_hashes(client, size)
    computed = merkle.root(hashes)
    if computed != root:
        raise VerifyFailed(f"root check failed / 根哈希不符: the {size} entries hash to "
                           f"{computed.hex()}, the signed checkpoint says {root.hex()}")
    checked = 0
    if inclusion_sample and size:
        checked = check_inclusion(client, hashes, root, inclusion_sample)
    save_state(state_path, origin, size, root, text)
    lines = [f"账本验证通过 / verified: {size} entries, root {root.hex()}"]
    if prev and prev["size"]:
        lines.append(f"与之前大小为 {prev['size']} 的检查点一致 / consistent with the previous "
                     f"checkpoint of size {prev['size']}")
    else:
        lines.append("首次验证，已记录检查点 / first run: checkpoint recorded")
    if checked:
        lines.append(f"包含证明 / inclusion proofs verified for {checked} indices")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.ledger.verify",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("base_url", help="the server, e.g. https://example.org (or …/api/v1)")
    parser.add_argument("--vkey", required=True,
                        help="the log's C2SP verifier key, from a trusted source")
    parser.add_argument("--state", default=DEFAULT_STATE,
                        help=f"state file (default {DEFAULT_STATE})")
    parser.add_argument("--check-inclusion", nargs="?", type=int, const=16, default=0,
                        metavar="N",
                        help="also verify inclusion proofs for N sampled indices (default 16)")
    args = parser.parse_args(argv)
    try:
        print(verify(args.base_url, args.vkey, Path(args.state).expanduser(), args.check_inclusion))
        return 0
    except VerifyFailed as exc:
        print(f"账本验证失败 / verification FAILED: {exc}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"错误 / error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
