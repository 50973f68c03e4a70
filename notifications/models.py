"""Notifications: who is told about what (``Endpoint``), what happened (``Event``, the outbox) and how
telling them went (``Delivery`` per event and endpoint, ``DeliveryAttempt`` per try).

The outbox is written by ``notifications.outbox`` in the transaction of the change record that caused
it, so a rolled-back change leaves no event and a committed one always has its deliveries; the worker
(``manage.py worker``) sends them through ``notifications.delivery``, which claims a delivery with a lease
so that any number of workers share the rows and a killed worker's claim expires (at-least-once).
docs/notifications.md describes the whole.
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from arm.models import Recorded, RecordedModel, Unrecorded
from arm.validators import validate_name
from notifications.choices import AttemptOutcome, DeliveryStatus, EndpointKind
from tenancy.choices import MEMBER_ROLES, Role
from tenancy.models import TenantKey

SECRET_PREFIX = "whsec_"
URL_MAX_LENGTH = 2000
ERROR_MAX_LENGTH = 500


class Endpoint(RecordedModel):
    """A tenant's subscription: a webhook URL signed per Standard Webhooks, a Slack incoming webhook, or
    email to the members holding ``email_role``. ``event_types`` lists the catalogue's types it receives
    (empty: every type). ``secret`` (``whsec_`` + base64) signs every request and is shown once, when made;
    after a rotation the ``previous_secret`` signs too until ``previous_secret_expires_at``, so receivers
    can switch without a gap. Writes go through ``notifications.services``."""

    audit = Recorded(
        "WEBHOOK_ENDPOINT",
        # Signing keys: a record says they changed, never what they are.
        name_only=("secret", "previous_secret"),
        events=(
            "WEBHOOK_ENDPOINT_SECRET_ROTATED",
            "WEBHOOK_TEST_SENT",  # "send a test event": an arm.test event queued for this endpoint
            "WEBHOOK_REDELIVERY_REQUESTED",  # a delivery queued again by a person
        ),
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200, validators=[validate_name])
    kind = models.CharField(max_length=10, choices=EndpointKind.choices, default=EndpointKind.WEBHOOK)
    url = models.URLField(max_length=URL_MAX_LENGTH, blank=True)
    email_role = models.CharField(
        max_length=20, choices=[(r, r) for r in MEMBER_ROLES], default=Role.APPROVER, blank=True
    )
    event_types = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                name="endpoint_unique_name_per_tenant",
                violation_error_message="An endpoint with this name already exists.",
            ),
            models.CheckConstraint(condition=models.Q(kind__in=EndpointKind.values), name="endpoint_kind_valid"),
            models.CheckConstraint(
                condition=models.Q(kind=EndpointKind.EMAIL) | ~models.Q(url=""),
                name="endpoint_url_unless_email",
                violation_error_message="A webhook or Slack endpoint needs a URL.",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind=EndpointKind.EMAIL) | ~models.Q(email_role=""),
                name="endpoint_email_has_role",
                violation_error_message="An email endpoint needs the role that receives it.",
            ),
            models.CheckConstraint(condition=models.Q(secret__startswith=SECRET_PREFIX), name="endpoint_secret_set"),
            models.CheckConstraint(
                condition=models.Q(previous_secret="") | models.Q(previous_secret_expires_at__isnull=False),
                name="endpoint_previous_secret_expires",
            ),
        ]
        indexes = [
            # The outbox's one query per notifying record: the tenant's active endpoints.
            models.Index(fields=["tenant"], condition=models.Q(active=True), name="endpoint_active_per_tenant"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from notifications import catalogue, outbound

        errors: dict[str, list[str]] = {}
        if not isinstance(self.event_types, list) or not all(isinstance(t, str) for t in self.event_types):
            errors["event_types"] = ["A list of event types."]
        else:
            unknown = sorted(set(self.event_types) - set(catalogue.SUBSCRIBABLE))
            if unknown:
                errors["event_types"] = [f"Unknown event type: {', '.join(unknown)}."]
            elif len(set(self.event_types)) != len(self.event_types):
                errors["event_types"] = ["An event type is listed twice."]
        if self.kind == EndpointKind.EMAIL:
            if self.url:
                errors["url"] = ["An email endpoint has no URL: it mails the members holding its role."]
            if self.email_role not in MEMBER_ROLES:
                errors["email_role"] = ["Choose the role whose members receive it."]
        elif self.url:
            try:
                outbound.check_url(self.url)
            except outbound.UnsafeURL as exc:
                errors["url"] = [str(exc)]
        else:  # said next to the field (the check constraint's message would land on no field)
            errors["url"] = ["A webhook or Slack endpoint needs a URL."]
        if errors:
            raise ValidationError(errors)

    def subscribes_to(self, event_type: str) -> bool:
        """Whether this endpoint receives ``event_type`` (an empty filter receives every type)."""
        return not self.event_types or event_type in self.event_types


class Event(models.Model):
    """One notifiable event of a tenant, the outbox row: its ``payload`` is the whole Standard Webhooks
    body (``{"type", "timestamp", "data"}``), sent as is to every endpoint; ``id`` is the ``webhook-id``
    (``msg_<hex>``), the same on every retry, by which receivers deduplicate. ``record_seq``: the change
    record (in the tenant's chain) it came from; null for a test event."""

    audit = Unrecorded(
        "operational: the change record it came from (record_seq) is the record; the event is a copy of it "
        "shaped for receivers, written in the same transaction"
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    record_seq = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="event_recent_per_tenant")]

    def __str__(self) -> str:
        return f"{self.type} {self.webhook_id}"

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.id.hex}"


class Delivery(models.Model):
    """One event to one endpoint. ``pending`` (never tried) and ``failed`` (will retry at
    ``next_attempt_at``) are due; ``succeeded`` and ``dead`` (gave up after the attempts allowed) are done.
    A worker claims a due delivery by setting ``lease_until`` in a conditional UPDATE (``FOR UPDATE SKIP
    LOCKED`` on PostgreSQL), so two workers never send it at once and a killed worker's claim runs out."""

    audit = Unrecorded("operational: a delivery log, written by the worker on every attempt")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = TenantKey("arm.Tenant", on_delete=models.PROTECT, related_name="+")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    # Attempts made, ever (each numbers its DeliveryAttempt); a redelivery starts a new round of retries
    # from attempts_at_redelivery, so backoff and dead-lettering count only the attempts since.
    attempts = models.PositiveIntegerField(default=0)
    attempts_at_redelivery = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=ERROR_MAX_LENGTH, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_unique_per_event_and_endpoint"),
            models.CheckConstraint(condition=models.Q(status__in=DeliveryStatus.values), name="delivery_status_valid"),
            models.CheckConstraint(
                condition=~models.Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED])
                | models.Q(next_attempt_at__isnull=False),
                name="delivery_due_has_next_attempt",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=DeliveryStatus.SUCCEEDED) | models.Q(delivered_at__isnull=False),
                name="delivery_succeeded_has_time",
            ),
            models.CheckConstraint(
                condition=models.Q(attempts_at_redelivery__lte=models.F("attempts")),
                name="delivery_round_within_attempts",
            ),
        ]
        indexes = [
            # drain(): the due deliveries in order.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status__in=["pending", "failed"]),
                name="delivery_due",
            ),
            # The per-endpoint delivery log.
            models.Index(fields=["endpoint", "-created_at"], name="delivery_log_per_endpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.endpoint_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try of a delivery: when, how long, the answer (or the error) and what it meant."""

    audit = Unrecorded("operational: a delivery log, written by the worker on every attempt")

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=ERROR_MAX_LENGTH, blank=True)
    outcome = models.CharField(max_length=10, choices=AttemptOutcome.choices)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_unique_number_per_delivery"),
            models.CheckConstraint(condition=models.Q(outcome__in=AttemptOutcome.values), name="attempt_outcome_valid"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"
