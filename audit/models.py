"""ChangeRecord: the append-only, per-tenant hash-chained audit trail.

Append-only is enforced three times: the model refuses save-on-existing and delete, the admin is
read-only, and database triggers (migration 0002) reject UPDATE and DELETE on SQLite and PostgreSQL.
"""

import uuid

from django.db import models

from arm.errors import Immutable
from arm.models import Unrecorded
from audit import chain, signing
from audit.chain import GENESIS_HASH
from tenancy.models import TenantKey

__all__ = ["GENESIS_HASH", "ChainCheckpoint", "ChainHead", "ChangeRecord", "SignedCheckpoint"]


class ChangeRecord(models.Model):
    """One change to one domain row, chained to the previous record of the same tenant."""

    audit = Unrecorded("the change records themselves (append-only; a record of a record would never end)")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="change_records")
    seq = models.PositiveBigIntegerField()
    # A name some model declares (audit.choices.EventType, checked when a record is written), not DB choices:
    # a new event needs no migration.
    event_type = models.CharField(max_length=40)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=64)
    actor = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    payload = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "seq"], name="changerecord_unique_seq_per_tenant"),
        ]
        indexes = [
            # newest-first listing per tenant (cursor pagination) and chain verification
            models.Index(fields=["tenant", "-created_at"], name="cr_tenant_created"),
            # "history of this object" (drawer, API target filter)
            models.Index(fields=["tenant", "target_type", "target_id"], name="cr_tenant_target"),
            models.Index(fields=["tenant", "event_type"], name="cr_tenant_event"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event_type} {self.target_type}:{self.target_id}"

    @property
    def transition(self) -> tuple | None:
        """(from, to) of a lifecycle move, from either shape a record has had: the annotated save's
        ``changes`` of the state field (``lifecycle_state``, ``state``), or an older record's
        ``from`` / ``to`` (docs/audit.md, "Names on older records"). None for other records."""
        payload = self.payload if isinstance(self.payload, dict) else {}
        if "from" in payload and "to" in payload:
            return payload["from"], payload["to"]
        changes = payload.get("changes")
        for state in ("lifecycle_state", "state"):
            if isinstance(changes, dict) and isinstance(changes.get(state), dict):
                return changes[state].get("before"), changes[state].get("after")
        return None

    def chain_fields(self) -> dict:
        """The record as the chain sees it (``audit.chain.RECORD_FIELDS``): tenant and timestamp as the
        text that is hashed. Exports write exactly this."""
        return chain_fields(
            tenant_id=self.tenant_id,
            seq=self.seq,
            event_type=self.event_type,
            target_type=self.target_type,
            target_id=self.target_id,
            actor=self.actor,
            created_at=self.created_at,
            payload=self.payload,
            prev_hash=self.prev_hash,
            hash=self.hash,
        )

    def canonical_content(self) -> bytes:
        return chain.canonical_content(self.chain_fields())

    def compute_hash(self) -> str:
        return chain.record_hash(self.prev_hash, self.chain_fields())

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise Immutable("Change records are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise Immutable("Change records are append-only.")


#: The columns ``chain_fields`` needs, for ``.values(*CHAIN_COLUMNS)`` reads of many records.
CHAIN_COLUMNS = (
    "tenant_id",
    "seq",
    "event_type",
    "target_type",
    "target_id",
    "actor",
    "created_at",
    "payload",
    "prev_hash",
    "hash",
)


def chain_fields(*, tenant_id, created_at, **columns) -> dict:
    """Database values of one record → the mapping ``audit.chain`` hashes (tenant UUID and
    ``created_at`` ISO 8601 as text)."""
    return {"tenant": str(tenant_id), "created_at": created_at.isoformat(), **columns}


class ChainHead(models.Model):
    """The tip of one tenant's chain. Appends lock this row (UPDATE first), so concurrent appends from
    any process or host are serialized by the database."""

    audit = Unrecorded("the tip of a tenant's chain, moved by every append in the append's own transaction")

    tenant = models.OneToOneField("arm.Tenant", on_delete=models.CASCADE, primary_key=True, related_name="+")
    last_seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"{self.tenant_id} at #{self.last_seq}"


class ChainCheckpoint(models.Model):
    """ "Record ``seq`` of this tenant's chain had ``hash`` when a verification from genesis or from an
    earlier checkpoint reached it" — written when a verification succeeds, so the next one only
    recomputes the records after it.

    A performance device, not a proof: anyone able to rewrite change records in the database can write
    a checkpoint just as easily. ``verify_chain(full=True)`` (``?full=true``, ``verify_audit --full``)
    ignores checkpoints, recomputes from genesis and confirms that every checkpoint matches its record.
    Writing one is not a domain change and appends no change record (like heartbeats). Append-only in
    the database (migration 0005)."""

    audit = Unrecorded(
        "a cache of a successful verification (append-only); the verification is what is audited, and "
        "a checkpoint proves nothing on its own"
    )

    id = models.BigAutoField(primary_key=True)
    tenant = TenantKey("arm.Tenant", on_delete=models.CASCADE, related_name="+")
    seq = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)
    verified_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "seq"], name="chaincheckpoint_unique_seq_per_tenant"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} verified to #{self.seq}"


class SignedCheckpoint(models.Model):
    """ "Tenant T's chain had ``seq`` records, record ``seq`` had ``hash`` and the RFC 6962 Merkle root over
    records 1..seq was ``root``, at ``signed_at``", signed with the Ed25519 key ``key_id`` held outside
    the database (``audit.signing``). Unlike ``ChainCheckpoint`` this is a proof: nobody who can only
    write the database can make one, and published copies (witnesses, exports) pin the chain for good.

    Taken by ``audit.services.checkpoint_take`` (``manage.py audit_checkpoint``, the API); one per
    (tenant, seq), so a witness never receives two different checkpoints at one seq from ARM. Not a
    domain change: it appends no change record. Append-only in the database (migration 0013)."""

    audit = Unrecorded(
        "a signed statement about the chain itself (append-only); a record of it would move the head it signs, "
        "and its proof is its signature, published outside ARM"
    )

    id = models.BigAutoField(primary_key=True)
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    seq = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)
    root = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    key_id = models.CharField(max_length=16)
    signature = models.CharField(max_length=88)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "seq"], name="signedcheckpoint_unique_seq_per_tenant"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} signed at #{self.seq}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise Immutable("Signed checkpoints are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise Immutable("Signed checkpoints are append-only.")

    @property
    def time(self) -> str:
        """``signed_at`` as the signed body spells it."""
        return signing.format_time(self.signed_at)

    def document(self, tenant_slug: str) -> dict:
        """The JSON form (``audit.signing``): what witnesses, exports and the API carry."""
        return {
            "type": "checkpoint",
            "format": signing.FORMAT,
            "version": signing.VERSION,
            "tenant": str(self.tenant_id),
            "tenant_slug": tenant_slug,
            "seq": self.seq,
            "hash": self.hash,
            "root": self.root,
            "time": self.time,
            "key_id": self.key_id,
            "signature": self.signature,
        }
