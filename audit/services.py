"""Writing to and verifying the audit chain. Every service that changes a domain row calls
``record_change`` inside its own transaction, so a rolled-back change leaves no record."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from arm.context import Actor, current_actor
from audit.models import GENESIS_HASH, ChainHead, ChangeRecord


def to_json(value):
    """Plain JSON types only (UUIDs, decimals and datetimes become strings) so hashes are stable. Numbers
    RFC 8785 cannot canonicalize (integers beyond ±(2^53-1), NaN, infinities) become strings too, so a
    record can always be chained."""
    return _i_json(json.loads(json.dumps(value, cls=DjangoJSONEncoder)))


def _i_json(value):
    if isinstance(value, dict):
        return {key: _i_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_i_json(item) for item in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) > 2**53 - 1:
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def diff(before: dict, after: dict) -> dict:
    """{field: {"before": x, "after": y}} for the fields that changed."""
    before, after = to_json(before), to_json(after)
    return {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def record_change(
    *,
    tenant,
    event_type: str,
    target,
    payload: dict | None = None,
    actor: Actor | None = None,
    target_type: str | None = None,
) -> ChangeRecord:
    """Append one record to ``tenant``'s chain.

    The chain head row is locked first (SELECT ... FOR UPDATE on PostgreSQL; SQLite's transactions
    begin IMMEDIATE, holding the write lock), so appends are serialized by the database across
    processes and hosts.
    """
    actor = actor or current_actor()
    with transaction.atomic():
        head = ChainHead.objects.select_for_update().filter(tenant_id=tenant.pk).first()
        if head is None:
            ChainHead.objects.bulk_create([ChainHead(tenant_id=tenant.pk)], ignore_conflicts=True)
            head = ChainHead.objects.select_for_update().get(tenant_id=tenant.pk)
        record = ChangeRecord(
            tenant_id=tenant.pk,
            seq=head.last_seq + 1,
            event_type=str(event_type),
            target_type=target_type or target.__class__.__name__,
            target_id=str(target.pk),
            actor=actor.ref,
            created_at=timezone.now(),
            payload=to_json(payload or {}),
            prev_hash=head.last_hash,
        )
        record.hash = record.compute_hash()
        record.save(force_insert=True)
        ChainHead.objects.filter(tenant_id=tenant.pk).update(last_seq=record.seq, last_hash=record.hash)
    return record


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    checked: int
    first_broken_seq: int | None
    reason: str = ""

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "first_broken_seq": self.first_broken_seq}


def verify_chain(tenant) -> ChainVerification:
    """Recompute ``tenant``'s chain in sequence order and name the first record that does not hold
    (a changed record, a gap left by a deleted one, or a truncated tail)."""
    prev_hash, expected_seq, checked = GENESIS_HASH, 1, 0
    records = ChangeRecord.objects.filter(tenant_id=tenant.pk).order_by("seq")
    for record in records.iterator(chunk_size=2000):
        if record.seq != expected_seq:
            return ChainVerification(False, checked, expected_seq, f"record #{expected_seq} is missing")
        if record.prev_hash != prev_hash:
            return ChainVerification(False, checked, record.seq, "prev_hash does not match the previous record")
        if record.compute_hash() != record.hash:
            return ChainVerification(False, checked, record.seq, "content does not match its hash")
        prev_hash, expected_seq, checked = record.hash, expected_seq + 1, checked + 1
    head = ChainHead.objects.filter(tenant_id=tenant.pk).first()
    if head is not None and (head.last_seq != checked or head.last_hash != prev_hash):
        return ChainVerification(False, checked, checked + 1, "records after this one are missing")
    return ChainVerification(True, checked, None)
