"""RFC 6962 Merkle trees over a tenant's change records, in plain Python (standard library only).

A signed checkpoint (``audit.signing``) carries the root of the tree whose leaves are the chain hashes
of records 1..N (each the 32 raw bytes of the record's ``hash``). With it, one record can be proven part
of a checkpoint by ``log2(N)`` sibling hashes (an *audit path*), without the rest of the chain.

The rule is RFC 6962 section 2.1 (Certificate Transparency), unchanged::

    MTH({})        = SHA-256()                       # the empty tree
    leaf hash      = SHA-256(0x00 || leaf data)
    node hash      = SHA-256(0x01 || left || right)
    MTH(D[0:n])    = node(MTH(D[0:k]), MTH(D[k:n]))  # k: the largest power of two < n

so any RFC 6962 / RFC 9162 verifier checks ARM's proofs. This file runs on its own
(``python audit/merkle.py PROOF.json`` verifies a proof document from the API) and imports nothing
outside the standard library; its command line checks the checkpoint's signature too when given pinned
public keys (``audit/signing.py``, which needs ``cryptography``).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence

LEAF_PREFIX = b"\x00"
#: the exit status of a proof that does not hold (0: it holds; 2: bad usage; 1: could not finish), as
#: ``audit/chain.py`` and ``manage.py verify_audit`` exit
PROBLEM_FOUND = 3
NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _level_up(level: list[bytes]) -> list[bytes]:
    up = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        up.append(level[-1])  # an odd node is carried up unchanged (the same tree as the recursive rule)
    return up


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH over ``leaves`` (raw leaf data, hashed here). Bottom-up, one list per level."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = [leaf_hash(leaf) for leaf in leaves]
    while len(level) > 1:
        level = _level_up(level)
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of ``leaves[index]`` in the tree over all of ``leaves`` (RFC 6962 2.1.1 PATH),
    siblings from the leaf up."""
    size = len(leaves)
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    path: list[bytes] = []
    level = [leaf_hash(leaf) for leaf in leaves]
    position = index
    while len(level) > 1:
        sibling = position ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        level = _level_up(level)
        position //= 2
    return path


def root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root an audit path leads to (RFC 9162 2.1.3.2), or ValueError when the path cannot belong to
    a tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    fn, sn = index, size - 1
    current = leaf_hash(leaf)
    for sibling in proof:
        if sn == 0:
            raise ValueError("the audit path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            current = node_hash(sibling, current)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            current = node_hash(current, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("the audit path is shorter than the tree is deep")
    return current


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """True when ``leaf`` is leaf ``index`` of the tree of ``size`` leaves whose root is ``root_hash``."""
    try:
        return root_from_inclusion(leaf, index, size, proof) == root_hash
    except ValueError:
        return False


# ---------------------------------------------------------------- proof documents


def verify_proof_document(document: dict) -> tuple[bool, str]:
    """Check a proof as ``GET /api/v1/audit/{id}/proof/`` answers it: the record's ``hash`` is leaf
    ``seq - 1`` of the tree of ``checkpoint.seq`` leaves whose root the checkpoint states. This checks the
    path only; that the checkpoint is genuine is its signature's job (``audit/signing.py``)."""
    try:
        record, checkpoint = document["record"], document["checkpoint"]
        seq, size = record["seq"], checkpoint["seq"]
        leaf = bytes.fromhex(record["hash"])
        path = [bytes.fromhex(item) for item in document["audit_path"]]
        expected = bytes.fromhex(checkpoint["root"])
    except (KeyError, TypeError, ValueError) as exc:
        return False, f"not a proof document ({exc.__class__.__name__}: {exc})"
    if not isinstance(seq, int) or not isinstance(size, int) or not 1 <= seq <= size:
        return False, f"record #{seq} cannot be in a checkpoint of {size} record(s)"
    if verify_inclusion(leaf, seq - 1, size, path, expected):
        return (
            True,
            f"record #{seq} ({record['hash']}) is included in the checkpoint at #{size} (root {expected.hex()})",
        )
    return False, f"record #{seq} is NOT included in the checkpoint at #{size}: the audit path leads to another root"


def _load(path: str):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _sibling(name: str):
    """``audit.<name>`` in ARM's checkout, else ``<name>.py`` beside this file (an auditor's copy)."""
    import importlib

    try:
        return importlib.import_module(f"audit.{name}")
    except ImportError:
        return importlib.import_module(name)


def main(argv: list[str] | None = None) -> int:
    """``python audit/merkle.py PROOF.json [--public-keys KEYS.json]``: the record's hash leads to the
    checkpoint's root along the audit path; with pinned keys (the ``/.well-known/arm-audit-keys.json``
    document the auditor archived) the checkpoint's signature holds too (needs ``cryptography``); and when
    ``rfc8785`` is installed, the record's content still hashes to its hash. Exit 0 when all hold, 3 when
    one does not, 2 on bad usage or an unreadable file (1: it could not finish, e.g. its reader left)."""
    args = sys.argv[1:] if argv is None else argv
    keys_path = None
    if len(args) == 3 and args[1] == "--public-keys":
        args, keys_path = args[:1], args[2]
    if len(args) != 1:
        print("usage: python audit/merkle.py PROOF.json [--public-keys KEYS.json]", file=sys.stderr)
        return 2
    try:
        document = _load(args[0])
        keys_document = _load(keys_path) if keys_path else None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"cannot read {exc.filename if isinstance(exc, OSError) else 'the file'}: {exc}", file=sys.stderr)
        return 2
    document = document if isinstance(document, dict) else {}
    ok, message = verify_proof_document(document)
    print(("OK     " if ok else "BROKEN ") + message)
    if not ok:
        return PROBLEM_FOUND
    try:
        chain = _sibling("chain")
    except ImportError:
        print("note   the record's content was not re-hashed (install rfc8785 to check it)")
    else:
        record = document["record"]
        try:
            holds = chain.record_hash(record["prev_hash"], record) == record["hash"]
        except (KeyError, TypeError, ValueError):
            holds = False
        print(
            ("OK     " if holds else "BROKEN ")
            + f"record #{record['seq']}'s content "
            + ("hashes to its hash" if holds else "does not hash to its hash")
        )
        if not holds:
            return PROBLEM_FOUND
    if keys_document is None:
        print("note   the checkpoint's signature was not checked: pass --public-keys KEYS.json (pinned keys)")
        return 0
    signing = _sibling("signing")
    try:
        keys = signing.parse_keys_document(keys_document)
    except signing.BadKey as exc:
        print(f"cannot use the keys in {keys_path}: {exc}", file=sys.stderr)
        return 2
    verified = signing.verify_checkpoint(document["checkpoint"], keys)
    checkpoint = document["checkpoint"]
    if not verified:
        print(f"BROKEN the checkpoint at #{checkpoint.get('seq')} does not verify: {verified.reason}")
        return PROBLEM_FOUND
    print(f"OK     the checkpoint at #{checkpoint['seq']} is signed by pinned key {checkpoint['key_id']}")
    return 0


def _run() -> int:
    code = 1  # the reader left before the verdict: the run did not finish
    try:
        code = main()
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # ``… | head``: the reader left; say nothing more, keep a verdict of a problem
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return code if code == PROBLEM_FOUND else 1


if __name__ == "__main__":
    raise SystemExit(_run())
