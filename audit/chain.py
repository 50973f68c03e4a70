"""The audit chain's hashing rule and chain walk, in plain Python (no Django, no database).

This module is the one definition of how a change record is hashed: ``ChangeRecord.compute_hash``
calls ``record_hash`` and so does the verifier of exported files, so the two can never disagree.
It imports only the standard library and ``rfc8785`` so an auditor can check an export with this one
file::

    pip install rfc8785
    python audit/chain.py acme-audit.jsonl

The rule (version ``HASH_RULE``)::

    hash = sha256( prev_hash as 64 lowercase hex ASCII bytes
                   + RFC 8785 canonical JSON (UTF-8) of {"tenant", "seq", "event_type", "target_type",
                                                        "target_id", "actor", "created_at", "payload"} )

as lowercase hex; ``prev_hash`` of a tenant's first record is 64 zeros (``GENESIS_HASH``); ``tenant`` is
the tenant's UUID as text and ``created_at`` the ISO 8601 text exactly as hashed.

Export files (``manage.py export_audit``) are JSON Lines: a header line, one line per record in
sequence order, a trailer line. See ``verify_export``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import rfc8785

GENESIS_HASH = "0" * 64
HASH_RULE = "arm-audit-chain-v1: sha256(prev_hash_hex_ascii + rfc8785(content))"
EXPORT_FORMAT = "arm-audit-export"
EXPORT_FORMAT_VERSION = 1

#: The fields of a record that go into its hash, in the order exports write them.
CONTENT_FIELDS = ("tenant", "seq", "event_type", "target_type", "target_id", "actor", "created_at", "payload")
#: Every field of an exported record line.
RECORD_FIELDS = (*CONTENT_FIELDS, "prev_hash", "hash")


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


def walk(records: Iterable[Mapping], *, first_seq: int, prev_hash: str) -> Iterator[Break | Mapping]:
    """Check records that should be seq ``first_seq``, ``first_seq + 1``, … each linked to the one
    before (the first to ``prev_hash``). Yields each record that holds; yields one ``Break`` naming the
    first that does not and stops.

    Each record is a mapping with ``RECORD_FIELDS`` (content fields as hashed)."""
    expected = first_seq
    for record in records:
        seq = record["seq"]
        if seq != expected:
            yield Break(expected, "missing", f"record #{expected} is missing")
            return
        if record["prev_hash"] != prev_hash:
            yield Break(seq, "link", "prev_hash does not match the previous record")
            return
        if record_hash(record["prev_hash"], record) != record["hash"]:
            yield Break(seq, "content", "content does not match its hash")
            return
        yield record
        prev_hash, expected = record["hash"], expected + 1


# ---------------------------------------------------------------- export files


@dataclass(frozen=True)
class FileVerification:
    ok: bool
    checked: int
    first_seq: int | None = None
    last_seq: int | None = None
    anchor: str = ""
    first_broken_seq: int | None = None
    reason: str = ""
    tenant_slug: str = ""
    head_seq: int | None = None
    head_hash: str = ""

    def summary(self) -> str:
        slug = self.tenant_slug or "?"
        if not self.ok:
            where = f"first broken record #{self.first_broken_seq}" if self.first_broken_seq else "broken file"
            return f"BROKEN {slug}: {where} ({self.reason}); {self.checked} record(s) verified before it"
        if not self.checked:
            return f"OK     {slug}: the export holds no records (chain head #{self.head_seq} {self.head_hash})"
        anchor = "from genesis" if self.anchor == GENESIS_HASH else f"anchored at prev_hash {self.anchor}"
        return (
            f"OK     {slug}: verified seq {self.first_seq}..{self.last_seq} ({self.checked} record(s)), {anchor}; "
            f"the last record is the exported chain head #{self.head_seq} {self.head_hash}"
        )


class _Broken(Exception):
    def __init__(self, reason: str, seq: int | None = None):
        super().__init__(reason)
        self.reason, self.seq = reason, seq


class _ExportReader:
    """Streams one export file: the header, then records (checked for shape and tenant), then the
    trailer. Holds one line at a time."""

    def __init__(self, handle):
        self.lines = self._parse(handle)
        self.header: dict | None = None
        self.trailer: dict | None = None
        self.last_seen_seq: int | None = None

    def _parse(self, handle) -> Iterator[tuple[int, dict]]:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                after = self.last_seen_seq
                raise _Broken(
                    f"line {number} is not JSON ({exc.msg}): a truncated or edited file",
                    after + 1 if isinstance(after, int) else None,
                ) from None
            if not isinstance(item, dict) or item.get("type") not in {"header", "record", "trailer"}:
                raise _Broken(f"line {number} is not a header, record or trailer line")
            yield number, item

    def read_header(self) -> dict:
        _, header = next(self.lines, (0, None))
        if header is None or header.get("type") != "header":
            raise _Broken("the file does not start with an export header")
        if header.get("format") != EXPORT_FORMAT or header.get("format_version") != EXPORT_FORMAT_VERSION:
            raise _Broken(f"unknown export format {header.get('format')!r} {header.get('format_version')!r}")
        if header.get("hash_rule") != HASH_RULE:
            raise _Broken(f"unknown hashing rule {header.get('hash_rule')!r}")
        self.header = header
        return header

    def records(self) -> Iterator[tuple[int, dict]]:
        for number, item in self.lines:
            if self.trailer is not None:
                raise _Broken(f"line {number} follows the trailer")
            if item["type"] == "trailer":
                self.trailer = item
                continue
            if item["type"] == "header":
                raise _Broken(f"line {number} is a second header")
            missing = [name for name in RECORD_FIELDS if name not in item]
            if missing or not isinstance(item["seq"], int) or isinstance(item["seq"], bool):
                raise _Broken(f"line {number} is not a whole record ({', '.join(missing) or 'seq'})", item.get("seq"))
            if item["tenant"] != self.header.get("tenant"):
                raise _Broken(f"record #{item['seq']} (line {number}) belongs to another tenant", item["seq"])
            self.last_seen_seq = item["seq"]
            yield number, item


def verify_export(path) -> FileVerification:
    """Verify an export file on its own (no database): its header (format, hashing rule), every record
    in order and linked to the one before (the first to its own ``prev_hash``: the genesis hash for a
    whole chain, the anchor for an export made with ``--since``), every record of the header's tenant,
    the last record equal to the chain head in the header, and the trailer's count and range (a
    truncated file has no trailer or ends before the head). Names the first record that does not hold."""
    progress = {"checked": 0, "first": None, "last": None, "anchor": ""}
    header: dict = {}
    try:
        with open(path, encoding="utf-8") as handle:
            reader = _ExportReader(handle)
            header = reader.read_header()
            return _verify_records(reader, header, progress)
    except _Broken as exc:
        head = header.get("head") or {}
        return FileVerification(
            False,
            progress["checked"],
            progress["first"],
            progress["last"],
            progress["anchor"],
            exc.seq,
            exc.reason,
            tenant_slug=header.get("tenant_slug", ""),
            head_seq=head.get("last_seq"),
            head_hash=head.get("last_hash", ""),
        )


def _verify_records(reader: _ExportReader, header: dict, progress: dict) -> FileVerification:
    head = header.get("head") or {}
    head_seq, head_hash = head.get("last_seq"), head.get("last_hash")
    stream = reader.records()
    first_line = next(stream, None)
    last_hash = None
    if first_line is not None:
        first = first_line[1]
        progress["first"], progress["anchor"] = first["seq"], first["prev_hash"]
        if first["seq"] < 1:
            raise _Broken(f"the first record has seq {first['seq']}", first["seq"])
        if first["seq"] == 1 and first["prev_hash"] != GENESIS_HASH:
            raise _Broken("prev_hash of record #1 is not the genesis hash", 1)
        items = (item for _, item in _prepend(first_line, stream))
        for result in walk(items, first_seq=first["seq"], prev_hash=first["prev_hash"]):
            if isinstance(result, Break):
                raise _Broken(_explain(result, stream), result.seq)
            progress["checked"] += 1
            progress["last"], last_hash = result["seq"], result["hash"]
    last = progress["last"]
    if reader.trailer is None:
        raise _Broken("the file is truncated: it has no trailer", (last or 0) + 1 if head_seq != last else None)
    if last is None:
        if isinstance(head_seq, int) and head_seq > 0 and header.get("since") is None:
            raise _Broken(f"the export holds no records but the chain head is #{head_seq}", 1)
    elif (last, last_hash) != (head_seq, head_hash):
        if isinstance(head_seq, int) and last < head_seq:
            raise _Broken(f"the records end at #{last} but the exported chain head is #{head_seq}", last + 1)
        raise _Broken(f"the last record #{last} does not match the exported chain head #{head_seq}", last)
    trailer = reader.trailer
    if trailer.get("records") != progress["checked"] or (trailer.get("first_seq"), trailer.get("last_seq")) != (
        progress["first"],
        last,
    ):
        raise _Broken(
            f"the trailer lists {trailer.get('records')} record(s) #{trailer.get('first_seq')}..#"
            f"{trailer.get('last_seq')}, the file holds {progress['checked']} #{progress['first']}..#{last}"
        )
    return FileVerification(
        True,
        progress["checked"],
        progress["first"],
        last,
        progress["anchor"],
        tenant_slug=header.get("tenant_slug", ""),
        head_seq=head_seq,
        head_hash=head_hash or "",
    )


def _prepend(first, rest):
    yield first
    yield from rest


def _explain(result: Break, rest: Iterator[tuple[int, dict]]) -> str:
    """For a gap, look further down the file: a record found later was moved (reordered lines), a record
    not found was deleted."""
    if result.kind != "missing":
        return result.reason
    try:
        for number, item in rest:
            if item["seq"] == result.seq:
                return f"record #{result.seq} is out of order (it appears later, on line {number})"
    except _Broken:
        pass
    return f"record #{result.seq} is missing"


def main(argv: list[str] | None = None) -> int:
    """``python audit/chain.py EXPORT.jsonl``: exit 0 when the export holds, 1 when it does not."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python audit/chain.py EXPORT.jsonl", file=sys.stderr)
        return 2
    result = verify_export(args[0])
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
