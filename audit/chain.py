"""The audit chain's hashing rule, chain walk and export verifier, in plain Python (no Django, no database).

This module is the one definition of how a change record is hashed: ``ChangeRecord.compute_hash``
calls ``record_hash`` and so does the verifier of exported files, so the two can never disagree.
It imports only the standard library, ``rfc8785`` (to re-hash records) and its two siblings
``audit/signing.py`` (signed checkpoints, needs ``cryptography``) and ``audit/merkle.py`` (standard
library), so an auditor checks an export with these three files::

    pip install rfc8785 cryptography
    python audit/chain.py acme-audit.jsonl --public-keys arm-audit-keys.json

Its exit status is ``manage.py verify_audit --file``'s: 0 the export holds, 3 it does not (the first record
or line that fails is named), 2 bad usage or a file that is not an export, 1 it could not finish (its
reader left, ``| head``, and the export held or was not read through). ``arm.commandutils.ExitCode`` has
the same numbers; this file imports no ARM.

The rule (version ``HASH_RULE``)::

    hash = sha256( prev_hash as 64 lowercase hex ASCII bytes
                   + RFC 8785 canonical JSON (UTF-8) of {"tenant", "seq", "event_type", "target_type",
                                                        "target_id", "actor", "created_at", "payload"} )

as lowercase hex; ``prev_hash`` of a tenant's first record is 64 zeros (``GENESIS_HASH``); ``tenant`` is
the tenant's UUID as text and ``created_at`` the ISO 8601 text exactly as hashed.

Export files (``manage.py export_audit``) are JSON Lines: a header line (with the public keys), the
signed checkpoint the export starts from (when it does not start at genesis), one line per record in
sequence order each followed by the signed checkpoint taken at it (if any), a trailer line. See
``verify_export`` for what a verification proves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

try:
    import rfc8785

    try:
        from audit import merkle, signing
    except ImportError as exc:  # ``python chain.py`` beside copies of merkle.py and signing.py, no ARM checkout
        if exc.name not in {"audit", "audit.merkle", "audit.signing"}:
            raise
        import merkle  # type: ignore[no-redef]
        import signing  # type: ignore[no-redef]
except ImportError as exc:
    if __name__ != "__main__":
        raise
    if exc.name in {"merkle", "signing"}:
        print(f"error: keep {exc.name}.py beside chain.py (audit/ in ARM's repository)", file=sys.stderr)
    else:
        print(f"error: the verifier needs {exc.name}: pip install rfc8785 cryptography", file=sys.stderr)
    sys.exit(2)  # not a verdict on the file: 3 would say it is broken

GENESIS_HASH = "0" * 64
#: the exit status of a verification that found a problem (0: it holds; 2: bad usage; 1: could not finish)
PROBLEM_FOUND = 3
HASH_RULE = "arm-audit-chain-v1: sha256(prev_hash_hex_ascii + rfc8785(content))"
EXPORT_FORMAT = "arm-audit-export"
#: 2: public keys in the header, signed checkpoint lines, the Merkle frontier of a later start.
EXPORT_FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)

#: The fields of a record that go into its hash, in the order exports write them.
CONTENT_FIELDS = ("tenant", "seq", "event_type", "target_type", "target_id", "actor", "created_at", "payload")
#: Every field of an exported record line.
RECORD_FIELDS = (*CONTENT_FIELDS, "prev_hash", "hash")

_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


def canonical_content(fields: Mapping) -> bytes:
    """RFC 8785 bytes of the hashed content. ``fields`` holds at least ``CONTENT_FIELDS``, with
    ``tenant`` and ``created_at`` already as the text that is hashed."""
    return rfc8785.dumps({name: fields[name] for name in CONTENT_FIELDS})


def record_hash(prev_hash: str, fields: Mapping) -> str:
    """The hash of one record: sha256(prev_hash hex ASCII bytes + RFC 8785 content), lowercase hex."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_content(fields)).hexdigest()


@dataclass(frozen=True)
class Break:
    """The first record of a walk that does not hold. ``kind``: ``missing`` (a gap: deleted, or moved
    elsewhere), ``link`` (prev_hash is not the previous record's hash), ``content`` (the record does not
    match its own hash)."""

    seq: int
    kind: str
    reason: str


def check_record(record: Mapping, *, seq: int, prev_hash: str) -> Break | None:
    """Why ``record`` cannot be record ``seq`` following a record whose hash is ``prev_hash`` (None: it can)."""
    if record["seq"] != seq:
        return Break(seq, "missing", f"record #{seq} is missing")
    if record["prev_hash"] != prev_hash:
        return Break(seq, "link", "prev_hash does not match the previous record")
    if record_hash(record["prev_hash"], record) != record["hash"]:
        return Break(seq, "content", "content does not match its hash")
    return None


def walk(records: Iterable[Mapping], *, first_seq: int, prev_hash: str) -> Iterator[Break | Mapping]:
    """Check records that should be seq ``first_seq``, ``first_seq + 1``, … each linked to the one
    before (the first to ``prev_hash``). Yields each record that holds; yields one ``Break`` naming the
    first that does not and stops.

    Each record is a mapping with ``RECORD_FIELDS`` (content fields as hashed)."""
    expected = first_seq
    for record in records:
        broken = check_record(record, seq=expected, prev_hash=prev_hash)
        if broken is not None:
            yield broken
            return
        yield record
        prev_hash, expected = record["hash"], expected + 1


class MerkleFrontier:
    """The RFC 6962 tree over a growing list of leaves (the 32-byte hashes of records 1, 2, …), kept as
    the roots of its perfect subtrees, largest first: at most log2(n) + 1 hashes. ``append`` costs one
    leaf hash and amortized one node hash, ``root()`` O(log n), so one pass over a chain checks the root
    of every checkpoint along it in constant memory. ``root()`` equals ``merkle.root(leaves)`` (tested);
    it is built from ``merkle.leaf_hash`` and ``merkle.node_hash``.

    ``subtrees()`` and ``from_subtrees`` carry the tree of records 1..a into an export that starts at
    a + 1; the verifier accepts them only when they lead to the root its signed checkpoint at ``a``
    states."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (height, subtree root), heights strictly decreasing

    @classmethod
    def from_subtrees(cls, size: int, subtrees: Iterable[bytes]) -> MerkleFrontier:
        """The frontier of a tree of ``size`` leaves from its perfect subtrees' roots (largest first):
        one per bit set in ``size``. ValueError when they cannot be."""
        hashes = list(subtrees)
        heights = [h for h in reversed(range(size.bit_length())) if size >> h & 1]
        if size < 0 or len(hashes) != len(heights) or any(len(h) != 32 for h in hashes):
            raise ValueError(f"a tree of {size} leaves has {len(heights)} perfect subtrees of 32-byte roots")
        frontier = cls()
        frontier.size, frontier._stack = size, list(zip(heights, hashes, strict=True))
        return frontier

    def append(self, leaf: bytes) -> None:
        self._stack.append((0, merkle.leaf_hash(leaf)))
        while len(self._stack) > 1 and self._stack[-1][0] == self._stack[-2][0]:
            (height, right), (_, left) = self._stack.pop(), self._stack.pop()
            self._stack.append((height + 1, merkle.node_hash(left, right)))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return merkle.root([])
        current = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            current = merkle.node_hash(left, current)
        return current

    def subtrees(self) -> list[bytes]:
        return [digest for _, digest in self._stack]


# ---------------------------------------------------------------- export files


class UsageError(Exception):
    """Input that cannot be verified at all (an unreadable or binary file, a keys file that is not one, a
    malformed option): exit status 2, not 3."""


def parse_position(text: str, option: str = "--anchor") -> tuple[int, str]:
    """``SEQ:HASH`` (``--anchor``, ``--expect-head``) → (seq, hash)."""
    seq, _, digest = str(text).partition(":")
    if not seq.isascii() or not seq.isdigit() or not _HEX64.match(digest.lower()):
        raise UsageError(f"{option} takes SEQ:HASH (a record's seq and its 64-hex chain hash), not {text!r}")
    return int(seq), digest.lower()


def load_public_keys(path) -> dict[str, signing.PublicKey]:
    """The keys an auditor pins: a keys document (``/.well-known/arm-audit-keys.json``, as archived)."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        return signing.parse_keys_document(document)
    except OSError as exc:
        raise UsageError(f"cannot read the public keys {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{path} is not an {signing.KEYS_FORMAT} document: {exc}") from None


def safe(text) -> str:
    """``text`` for a terminal: control, format and separator characters (escape sequences, bidi
    overrides) escaped, never raw. Exports are files anyone may have edited."""
    out = []
    for char in str(text):
        if unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class FileVerification:
    """What ``verify_export`` proved. ``start``: what the first record was anchored to (genesis, a signed
    checkpoint, or the anchor the auditor named); ``end``: what covers the last position (a signed
    checkpoint at it, or the head the auditor expected). ``pinned``: signatures were checked against keys
    the auditor pinned (False: against the keys the file itself carries)."""

    ok: bool
    checked: int
    first_seq: int | None = None
    last_seq: int | None = None
    start: str = ""
    first_broken_seq: int | None = None
    reason: str = ""
    tenant_slug: str = ""
    head_seq: int | None = None
    head_hash: str = ""
    checkpoints: int = 0
    roots_checked: bool = False
    end: str = ""
    pinned: bool = True

    def summary(self) -> str:
        slug = safe(self.tenant_slug or "?")
        lines = []
        if not self.ok:
            if self.first_broken_seq:
                lines.append(
                    f"BROKEN {slug}: first broken record #{self.first_broken_seq} ({safe(self.reason)}); "
                    f"{self.checked} record(s) verified before it"
                )
            else:
                lines.append(f"BROKEN {slug}: {safe(self.reason)}; {self.checked} record(s) verified")
        else:
            if self.checked:
                lines.append(
                    f"OK     {slug}: verified seq {self.first_seq}..{self.last_seq} ({self.checked} record(s)), "
                    f"from {self.start}; the last record is the exported chain head #{self.head_seq} {self.head_hash}"
                )
            else:
                lines.append(f"OK     {slug}: no records after {self.start}; the chain head is #{self.head_seq}")
            roots = "their Merkle roots recomputed" if self.roots_checked else "Merkle roots not recomputed"
            lines.append(f"       {self.checkpoints} signed checkpoint(s) verified ({roots}); {self.end}")
        if not self.pinned:
            lines.append(
                "WARNING no public keys were pinned: signatures were checked against the keys the file itself "
                "carries, which whoever made the file chose. Pin the keys you archived (--public-keys "
                "arm-audit-keys.json) for a proof."
            )
        return "\n".join(lines)


class _Broken(Exception):
    """``at_next``: the broken place is the record after the last one verified (a line that is not one)."""

    def __init__(self, reason: str, seq: int | None = None, *, at_next: bool = False):
        super().__init__(reason)
        self.reason, self.seq, self.at_next = reason, seq, at_next


def _lines(handle, path) -> Iterator[tuple[int, dict]]:
    """(line number, JSON object) of each non-blank line; a file that is not text is a usage error."""
    head = handle.peek(8192)[:8192] if hasattr(handle, "peek") else b""
    if b"\x00" in head:
        raise UsageError(f"{path} is a binary file, not an export")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the 8 KiB boundary
            raise UsageError(f"{path} is not UTF-8 text, not an export") from None
    for number, raw in enumerate(handle, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Broken(f"line {number} is not UTF-8 text: an edited file", at_next=True) from None
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise _Broken(f"line {number} is not JSON ({exc.msg}): a truncated or edited file", at_next=True) from None
        if not isinstance(item, dict) or item.get("type") not in {"header", "record", "checkpoint", "trailer"}:
            raise _Broken(f"line {number} is not a header, record, checkpoint or trailer line")
        yield number, item


class _ExportCheck:
    """One pass over an export: the header, then records and checkpoints in file order, then the trailer.
    Holds one line and the Merkle frontier (log n hashes) at a time."""

    def __init__(self, header: dict, *, pinned, anchor, expect_head):
        self.header = header
        self.tenant = header.get("tenant")
        head = header.get("head")
        if not (
            isinstance(head, dict)
            and isinstance(head.get("last_seq"), int)
            and isinstance(head.get("last_hash"), str)
            and _HEX64.match(head["last_hash"])
        ):
            raise _Broken("the header's chain head is not a seq and a 64-hex hash")
        self.head = (head["last_seq"], head["last_hash"])
        carried = header.get("public_keys")
        try:
            self.carried = signing.parse_keys_document(carried) if carried is not None else {}
        except signing.BadKey as exc:
            raise _Broken(f"the public keys in the header are not a keys document: {exc}") from None
        self.pinned = pinned is not None
        self.trusted = pinned if pinned is not None else self.carried
        self.anchor, self.expect_head = anchor, expect_head
        self.checked = self.checkpoints = 0
        self.first_seq: int | None = None
        self.position: tuple[int, str] | None = None  # (seq, hash) of the last verified record or the anchor
        self.covered = ""  # the time of the verified checkpoint standing at ``position`` ("" when none)
        self.frontier: MerkleFrontier | None = None
        self.start = ""
        self.leading: list[tuple[int, dict]] = []  # checkpoints before the first record

    # -- checkpoints

    def _verified(self, number: int, document: dict) -> dict:
        seq = document.get("seq")
        result = signing.verify_checkpoint(document, self.trusted)
        if not result:
            reason = result.reason
            kid = document.get("key_id")
            if self.pinned and kid in self.carried and kid not in self.trusted:
                reason = f"signed by key {kid}, which the file carries but is not among the keys you pinned"
            raise _Broken(f"the checkpoint at #{seq} (line {number}) does not verify: {reason}")
        if document["tenant"] != self.tenant:
            raise _Broken(f"the checkpoint at #{seq} (line {number}) is another tenant's")
        return document

    def checkpoint(self, number: int, document: dict) -> None:
        document = self._verified(number, document)
        if self.position is None:
            self.leading.append((number, document))
            return
        self._at_position(number, document)

    def _at_position(self, number: int, document: dict) -> None:
        seq, at = document["seq"], self.position[0]
        if seq != at:
            raise _Broken(
                f"the checkpoint at #{seq} (line {number}) is out of place: a checkpoint follows the record at "
                f"its seq, and this one follows #{at}"
            )
        if document["hash"] != self.position[1]:
            raise _Broken(
                f"the signed checkpoint at #{seq} (line {number}) has hash {document['hash']} but record #{seq} "
                f"has {self.position[1]}: these are not the records ARM signed"
            )
        if self.frontier is not None and self.frontier.root().hex() != document["root"]:
            raise _Broken(
                f"the signed checkpoint at #{seq} (line {number}) states Merkle root {document['root']}; "
                f"records #1..#{seq} give {self.frontier.root().hex()}"
            )
        self.covered = document["time"]
        self.checkpoints += 1

    # -- the start

    def _anchor(self, first: dict | None) -> None:
        """Anchor the first record (or, with none, the end) before it is checked: genesis, the signed
        checkpoint just before it, or the anchor the auditor named."""
        if first is not None:
            start, prev_hash = first["seq"], first["prev_hash"]
        elif self.anchor is not None:
            start, prev_hash = self.anchor[0] + 1, self.anchor[1]
        else:
            start, prev_hash = self.head[0] + 1, self.head[1]
        since = self.header.get("since")
        if since is None and start != 1:
            raise _Broken(f"the header claims the whole chain (since: null) but the export starts at #{start}", start)
        if isinstance(since, str) and since.isascii() and since.isdigit() and start > max(int(since), 1):
            raise _Broken(f"the header asks for the records since #{since} but the export starts at #{start}", start)
        anchored_by = None
        if self.anchor is not None:
            if (start - 1, prev_hash) != self.anchor:
                raise _Broken(
                    f"the export does not continue from the anchor you named (#{self.anchor[0]} {self.anchor[1]}): "
                    f"it starts after #{start - 1} {prev_hash}",
                    start,
                )
            self.start = f"the anchor you named (#{self.anchor[0]})"
        elif start == 1:
            if prev_hash != GENESIS_HASH:
                raise _Broken("prev_hash of record #1 is not the genesis hash", 1)
            self.start = "genesis"
        else:
            anchored_by = next((d for _, d in self.leading if d["seq"] == start - 1), None)
            if anchored_by is None:
                raise _Broken(
                    f"nothing anchors record #{start}, the first of the export: it holds no signed checkpoint at "
                    f"#{start - 1} (if you know the chain hash of record #{start - 1}, name it with "
                    f"--anchor {start - 1}:HASH)",
                    start,
                )
            if anchored_by["hash"] != prev_hash:
                raise _Broken(
                    f"record #{start} does not follow the signed checkpoint at #{start - 1}: its prev_hash is "
                    f"{prev_hash}, the checkpoint's hash {anchored_by['hash']}",
                    start,
                )
            self.start = f"the signed checkpoint at #{start - 1}"
        self.frontier = MerkleFrontier() if start == 1 else self._carried_frontier(start - 1, anchored_by)
        self.first_seq = start
        self.position = (start - 1, prev_hash)
        for number, document in self.leading:
            self._at_position(number, document)

    def _carried_frontier(self, size: int, anchored_by: dict | None) -> MerkleFrontier | None:
        carried = self.header.get("frontier")
        if anchored_by is None or not isinstance(carried, dict):
            return None  # roots of later checkpoints cannot be recomputed without records 1..size
        try:
            if carried.get("seq") != size:
                raise ValueError(f"it is the tree of #{carried.get('seq')}, not of #{size}")
            frontier = MerkleFrontier.from_subtrees(size, [bytes.fromhex(h) for h in carried.get("subtrees")])
        except (TypeError, ValueError) as exc:
            raise _Broken(f"the header's Merkle frontier is not the tree of records #1..#{size}: {exc}") from None
        if frontier.root().hex() != anchored_by["root"]:
            raise _Broken(
                f"the header's Merkle frontier does not lead to the root of the signed checkpoint at #{size}: "
                f"records before #{size + 1} were changed where the export was made"
            )
        return frontier

    # -- records

    def record(self, item: dict, rest: Iterator[tuple[int, dict]]) -> None:
        if self.position is None:
            self._anchor(item)
        seq, prev_hash = self.position[0] + 1, self.position[1]
        broken = check_record(item, seq=seq, prev_hash=prev_hash)
        if broken is not None:
            raise _Broken(_explain(broken, rest), broken.seq)
        if self.frontier is not None:
            self.frontier.append(bytes.fromhex(item["hash"]))
        self.position, self.covered = (seq, item["hash"]), ""
        self.checked += 1

    # -- the end

    def finish(self, trailer: dict | None) -> tuple[int | None, str]:
        last = self.position[0] if self.checked else None
        if trailer is None:
            cut_at = (last or 0) + 1 if self.head[0] != last else None
            raise _Broken("the file is truncated: it has no trailer", cut_at)
        if self.position is None:  # no records
            if self.head[0] > 0 and self.anchor is None:
                raise _Broken(
                    f"the export holds no records but the chain head is #{self.head[0]}: an empty export proves "
                    f"nothing (if you expected nothing after #{self.head[0]}, name it with --anchor "
                    f"{self.head[0]}:HASH)",
                    1 if self.header.get("since") is None else None,
                )
            self._anchor(None)
        if self.position != self.head:
            if last is None:
                raise _Broken(
                    f"the export holds no records after #{self.position[0]} but its chain head is #{self.head[0]}"
                )
            if last < self.head[0]:
                raise _Broken(f"the records end at #{last} but the exported chain head is #{self.head[0]}", last + 1)
            raise _Broken(f"the last record #{last} does not match the exported chain head #{self.head[0]}", last)
        if self.expect_head is not None:
            if self.position != self.expect_head:
                raise _Broken(
                    f"the export ends at #{self.position[0]} {self.position[1]}, not at the head you expected "
                    f"(#{self.expect_head[0]} {self.expect_head[1]})",
                    self.position[0] + 1 if self.position[0] < self.expect_head[0] else None,
                )
            end = f"its end #{self.position[0]} is the head you expected, so no record was cut from the end"
        elif self.covered:
            end = (
                f"its end #{self.position[0]} is covered by the signed checkpoint at #{self.position[0]} of "
                f"{self.covered}: no record up to then was cut from the end"
            )
        else:
            raise _Broken(
                f"no signed checkpoint covers the end of the export (#{self.position[0]}): records cut from its end "
                "could not be detected (name the chain head you wrote down with --expect-head SEQ:HASH)"
            )
        first = self.first_seq if self.checked else None
        if trailer.get("records") != self.checked or (trailer.get("first_seq"), trailer.get("last_seq")) != (
            first,
            last,
        ):
            raise _Broken(
                f"the trailer lists {trailer.get('records')} record(s) #{trailer.get('first_seq')}..#"
                f"{trailer.get('last_seq')}, the file holds {self.checked} #{first}..#{last}"
            )
        return last, end


def verify_export(path, *, public_keys=None, anchor=None, expect_head=None) -> FileVerification:
    """Verify an export file on its own (no database). Records must be whole, in order, of the header's
    tenant, each linked to the one before and matching its own hash. The first must be anchored: record
    #1 at the genesis hash, or a later one at the signed checkpoint just before it in the file, or at the
    ``anchor`` (seq, hash) the auditor names. Every checkpoint must carry a valid signature by one of
    ``public_keys`` ({key_id: signing.PublicKey}, the keys the auditor pinned; None: the keys the file
    carries, and the summary says so), the hash of the record it follows and, where the file allows it,
    the Merkle root of records 1..its seq. The end must be the header's head and covered by a signed
    checkpoint or equal to ``expect_head``. Names the first record (or line) that does not hold.

    Raises UsageError for a file that cannot be read as an export at all (exit status 2)."""
    header: dict = {}
    state: _ExportCheck | None = None
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        with handle:
            lines = _lines(handle, path)
            number, header = next(lines, (0, {}))
            _check_header(header)
            state = _ExportCheck(header, pinned=public_keys, anchor=anchor, expect_head=expect_head)
            trailer = None
            for number, item in lines:
                if trailer is not None:
                    raise _Broken(f"line {number} follows the trailer")
                kind = item["type"]
                if kind == "trailer":
                    trailer = item
                elif kind == "checkpoint":
                    state.checkpoint(number, item)
                elif kind == "header":
                    raise _Broken(f"line {number} is a second header")
                else:
                    state.record(_whole_record(number, item, state.tenant), lines)
            last, end = state.finish(trailer)
    except _Broken as exc:
        head = header.get("head") if isinstance(header.get("head"), dict) else {}
        if exc.at_next and state is not None:
            exc.seq = state.position[0] + 1 if state.position else None
        return FileVerification(
            False,
            state.checked if state else 0,
            state.first_seq if state else None,
            state.position[0] if state and state.checked else None,
            state.start if state else "",
            exc.seq,
            exc.reason,
            tenant_slug=str(header.get("tenant_slug", "")),
            head_seq=head.get("last_seq"),
            head_hash=str(head.get("last_hash", "")),
            pinned=state.pinned if state else public_keys is not None,
        )
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    return FileVerification(
        True,
        state.checked,
        state.first_seq if state.checked else None,
        last,
        state.start,
        tenant_slug=str(header.get("tenant_slug", "")),
        head_seq=state.head[0],
        head_hash=state.head[1],
        checkpoints=state.checkpoints,
        roots_checked=state.frontier is not None,
        end=end,
        pinned=state.pinned,
    )


def _check_header(header: dict) -> None:
    if header.get("type") != "header":
        raise _Broken("the file does not start with an export header")
    if header.get("format") != EXPORT_FORMAT or header.get("format_version") not in READABLE_FORMAT_VERSIONS:
        raise _Broken(f"unknown export format {header.get('format')!r} {header.get('format_version')!r}")
    if header.get("hash_rule") != HASH_RULE:
        raise _Broken(f"unknown hashing rule {header.get('hash_rule')!r}")


def _whole_record(number: int, item: dict, tenant) -> dict:
    missing = [name for name in RECORD_FIELDS if name not in item]
    if missing or not isinstance(item["seq"], int) or isinstance(item["seq"], bool):
        raise _Broken(f"line {number} is not a whole record ({', '.join(missing) or 'seq'})", item.get("seq"))
    if not isinstance(item["hash"], str) or not _HEX64.match(item["hash"]):
        raise _Broken(f"record #{item['seq']} (line {number}) has no 64-hex hash", item["seq"])
    if item["tenant"] != tenant:
        raise _Broken(f"record #{item['seq']} (line {number}) belongs to another tenant", item["seq"])
    return item


def _explain(result: Break, rest: Iterator[tuple[int, dict]]) -> str:
    """For a gap, look further down the file: a record found later was moved (reordered lines), a record
    not found was deleted."""
    if result.kind != "missing":
        return result.reason
    try:
        for number, item in rest:
            if item.get("type") == "record" and item.get("seq") == result.seq:
                return f"record #{result.seq} is out of order (it appears later, on line {number})"
    except _Broken:
        pass
    return f"record #{result.seq} is missing"


def main(argv: list[str] | None = None) -> int:
    """``python audit/chain.py EXPORT.jsonl [--public-keys KEYS.json] [--anchor SEQ:HASH]
    [--expect-head SEQ:HASH]``: exit 0 when the export holds, 3 when it does not, 2 on bad usage."""
    parser = argparse.ArgumentParser(
        prog="python audit/chain.py", description="Verify an ARM audit export (export_audit) without ARM."
    )
    parser.add_argument("export", help="the export file (JSON Lines)")
    parser.add_argument("--public-keys", help="the keys document you archived (/.well-known/arm-audit-keys.json)")
    parser.add_argument("--anchor", help="SEQ:HASH the export must continue from (e.g. your previous export's end)")
    parser.add_argument("--expect-head", help="SEQ:HASH the export must end at (the chain head you wrote down)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)  # exits 2 on bad arguments
    try:
        result = verify_export(
            args.export,
            public_keys=load_public_keys(args.public_keys) if args.public_keys else None,
            anchor=parse_position(args.anchor, "--anchor") if args.anchor else None,
            expect_head=parse_position(args.expect_head, "--expect-head") if args.expect_head else None,
        )
    except UsageError as exc:
        print(f"error: {safe(exc)}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0 if result.ok else PROBLEM_FOUND


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
