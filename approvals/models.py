"""ApprovalRequest: a human decision on one risky tool call, opened by policy evaluation."""

import copy
import uuid
from datetime import datetime

from django.db import models

from approvals.choices import ApprovalStatus
from arm.models import Recorded, RecordedModel
from arm.validators import MAX_DESCRIPTION_LENGTH, validate_description_length
from registry.choices import Risk
from tenancy.models import TenantKey

EXPIRED_BY = "system:expiry"  # decided_by of a request that expired (auto-deny)


class ApprovalRequest(RecordedModel):
    """Bound to the whole call: instance + tool (its manifest name) + a hash of the canonical params, the
    estimate at most and the data scopes at most (``policies.engine.approval_problem``); single use once
    APPROVED. Opened under an ``idempotency_key``, it is that key's call's approval for the key's whole life.
    The runtime that opened it may withdraw it while PENDING."""

    audit = Recorded(
        "APPROVAL",
        # The call's arguments, possibly large or personal: records carry their params_hash, which binds.
        name_only=("params",),
        events=("APPROVAL_REQUESTED", "APPROVAL_DECIDED", "APPROVAL_EXPIRED", "APPROVAL_USED", "APPROVAL_WITHDRAWN"),
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    instance = models.ForeignKey("registry.AgentInstance", on_delete=models.PROTECT, related_name="approvals")
    tool = models.CharField(max_length=200)
    params = models.JSONField(default=dict, blank=True)
    params_hash = models.CharField(max_length=64)
    risk = models.CharField(max_length=10, choices=Risk.choices)
    # What the approver grants beside the params: the call's estimate (at most) and data scopes (at most).
    estimated_cost_usd = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    data_scopes = models.JSONField(default=list, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    idempotency_key = models.CharField(max_length=200, blank=True)
    requester = models.CharField(max_length=200)
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    decided_by = models.CharField(max_length=200, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, max_length=MAX_DESCRIPTION_LENGTH, validators=[validate_description_length])
    used_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=ApprovalStatus.values), name="approval_status_valid"),
            # De-duplication settled by the database: one PENDING request per identical call without a key
            # and one per idempotency key (calls with their own keys are different calls, however alike).
            models.UniqueConstraint(
                fields=["instance", "tool", "params_hash"],
                condition=models.Q(status=ApprovalStatus.PENDING, idempotency_key=""),
                name="approval_one_pending_per_call",
            ),
            models.UniqueConstraint(
                fields=["instance", "idempotency_key"],
                condition=models.Q(status=ApprovalStatus.PENDING) & ~models.Q(idempotency_key=""),
                name="approval_one_pending_per_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "-requested_at"], name="approval_tenant_status"),
            models.Index(fields=["status", "expires_at"], name="approval_status_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.tool} on {self.instance_id} ({self.status})"

    def decided_by_display(self) -> str:
        """Who decided, as a person: ``user:alice``, or ``user:alice via key:c1b3d4e5`` for a key acting for
        alice (``decider_principal``, read with the row by ``approvals.selectors.with_decider``)."""
        person = getattr(self, "decider_principal", None) or self.decided_by
        if not self.decided_by or person == self.decided_by:
            return self.decided_by
        return f"{person} via {self.decided_by}"

    def is_overdue(self, now: datetime) -> bool:
        """Still PENDING in the database although its deadline has passed (not expired by a write yet)."""
        return self.status == ApprovalStatus.PENDING and self.expires_at <= now

    def as_of(self, now: datetime) -> "ApprovalRequest":
        """The request as readers see it at ``now``: an overdue PENDING request reads as EXPIRED, decided
        at its deadline by the expiry, exactly what ``approvals.services.approval_expire`` writes later (the
        ``expire_approvals`` command, a decision or an evaluation that names it). Reads never write; the
        copy returned is never saved."""
        if not self.is_overdue(now):
            return self
        shown = copy.copy(self)
        shown.status, shown.decided_at, shown.decided_by = ApprovalStatus.EXPIRED, self.expires_at, EXPIRED_BY
        return shown
