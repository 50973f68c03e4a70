"""ChangeRecord: the append-only, per-tenant hash-chained audit trail.

Append-only is enforced three times: the model refuses save-on-existing and delete, the admin is
read-only, and database triggers (migration 0002) reject UPDATE and DELETE on SQLite and PostgreSQL.
"""

import hashlib
import uuid

import rfc8785
from django.db import models

from arm.errors import Immutable
from audit.choices import EventType

GENESIS_HASH = "0" * 64


class ChangeRecord(models.Model):
    """One change to one domain row, chained to the previous record of the same tenant."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("arm.Tenant", on_delete=models.PROTECT, related_name="change_records")
    seq = models.PositiveBigIntegerField()
    event_type = models.CharField(max_length=40, choices=EventType.choices)
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

    def canonical_content(self) -> bytes:
        return rfc8785.dumps(
            {
                "tenant": str(self.tenant_id),
                "seq": self.seq,
                "event_type": self.event_type,
                "target_type": self.target_type,
                "target_id": self.target_id,
                "actor": self.actor,
                "created_at": self.created_at.isoformat(),
                "payload": self.payload,
            }
        )

    def compute_hash(self) -> str:
        return hashlib.sha256(self.prev_hash.encode() + self.canonical_content()).hexdigest()

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise Immutable("Change records are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise Immutable("Change records are append-only.")


class ChainHead(models.Model):
    """The tip of one tenant's chain. Appends lock this row (UPDATE first), so concurrent appends from
    any process or host are serialized by the database."""

    tenant = models.OneToOneField("arm.Tenant", on_delete=models.CASCADE, primary_key=True, related_name="+")
    last_seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"{self.tenant_id} at #{self.last_seq}"
