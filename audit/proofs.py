"""Inclusion proofs: one change record proven part of a signed checkpoint without the rest of the chain.

A signed checkpoint (``audit.signing``) states the RFC 6962 Merkle root over the hashes of records
1..seq. ``record_proof`` answers the record, its leaf index, the checkpoint and the audit path (the
``log2(seq)`` sibling subtree roots from the leaf up), which is what ``GET /api/v1/audit/{id}/proof/``
returns and ``python audit/merkle.py PROOF.json --public-keys KEYS.json`` checks offline: the path leads
from the record's hash to the signed root, and the signature holds under a key the auditor pinned.

Cost: the sibling roots cover every record 1..seq but the leaf, so a proof reads the tenant's record
hashes up to the checkpoint once (streamed, constant memory: each sibling subtree is folded as its
records go by) and hashes each once; nothing is stored and nothing runs on the write path. A proof that
does not lead to the signed root means the database no longer holds what was signed: 409 ``chain_broken``,
as ``verify_audit --checkpoints`` would report it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from arm.errors import DomainError
from audit import chain, merkle
from audit.models import ChangeRecord, SignedCheckpoint
from audit.services import ChainNotExtended


class NoCheckpoint(DomainError):
    """No signed checkpoint covers the record (yet), or the one asked for does not."""

    status = 409
    code = "no_checkpoint"


def path_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[start, end)`` whose subtree roots make the audit path of leaf ``index`` in a tree
    of ``size`` leaves, from the leaf up (RFC 6962 2.1.1: PATH(m, D[n]) is PATH of the half holding m,
    then the root of the other half)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of {size} leaves")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = 1 << ((hi - lo - 1).bit_length() - 1)  # the largest power of two below hi - lo
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()  # found top-down, the path runs bottom-up
    return ranges


def streamed_inclusion_proof(leaves: Iterable[bytes], index: int, size: int) -> tuple[bytes, list[bytes]]:
    """(leaf ``index``, its audit path) from ``leaves`` 0..size-1 read once in order, each sibling
    subtree folded as its leaves pass (memory: one Merkle frontier). ValueError when fewer leaves come."""
    ranges = path_ranges(index, size)
    roots: dict[tuple[int, int], bytes] = {}
    stream: Iterator[bytes] = iter(leaves)
    position, leaf = 0, None
    pending = sorted(ranges) + [(index, index + 1)]
    for start, end in sorted(pending):
        frontier = chain.MerkleFrontier()
        while position < end:
            item = next(stream, None)
            if item is None:
                raise ValueError(f"the tree holds {position} leaves, not {size}")
            if position == index:
                leaf = item
            elif position >= start:
                frontier.append(item)
            position += 1
        if (start, end) != (index, index + 1):
            roots[(start, end)] = frontier.root()
    return leaf, [roots[item] for item in ranges]


def record_proof(*, record: ChangeRecord, tenant_slug: str, checkpoint_seq: int | None = None) -> dict:
    """The proof document for ``record`` against the signed checkpoint at ``checkpoint_seq`` (default: the
    newest; it must be at or after the record). Raises NoCheckpoint, or ChainNotExtended when the records
    in the database no longer lead to the signed root."""
    checkpoints = SignedCheckpoint.objects.filter(tenant_id=record.tenant_id)
    if checkpoint_seq is None:
        checkpoint = checkpoints.order_by("-seq").first()
        if checkpoint is None or checkpoint.seq < record.seq:
            raise NoCheckpoint(
                f"No signed checkpoint covers record #{record.seq} yet: take one (manage.py audit_checkpoint, "
                "or POST /api/v1/audit/checkpoints/) and ask again."
            )
    else:
        checkpoint = checkpoints.filter(seq=checkpoint_seq).first()
        if checkpoint is None:
            raise NoCheckpoint(f"There is no signed checkpoint at #{checkpoint_seq}.", code="unknown_checkpoint")
        if checkpoint.seq < record.seq:
            raise NoCheckpoint(
                f"The checkpoint at #{checkpoint.seq} precedes record #{record.seq}: it cannot include it."
            )
    hashes = (
        ChangeRecord.objects.filter(tenant_id=record.tenant_id, seq__lte=checkpoint.seq)
        .order_by("seq")
        .values_list("hash", flat=True)
        .iterator(chunk_size=5000)
    )
    index = record.seq - 1
    try:
        leaf, path = streamed_inclusion_proof((bytes.fromhex(h) for h in hashes), index, checkpoint.seq)
    except ValueError as exc:  # fewer records than signed, or a hash that is not hex
        raise ChainNotExtended(
            f"The records up to the checkpoint at #{checkpoint.seq} are not the ones signed ({exc}). "
            "Run verify_audit --checkpoints."
        ) from None
    if leaf.hex() != record.hash or not merkle.verify_inclusion(
        leaf, index, checkpoint.seq, path, bytes.fromhex(checkpoint.root)
    ):
        raise ChainNotExtended(
            f"Records #1..#{checkpoint.seq} no longer lead to the Merkle root signed at #{checkpoint.seq}. "
            "Run verify_audit --checkpoints."
        )
    return {
        "record": record.chain_fields(),
        "leaf_index": index,
        "tree_size": checkpoint.seq,
        "audit_path": [item.hex() for item in path],
        "checkpoint": checkpoint.document(tenant_slug),
    }
