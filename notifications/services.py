"""Every write of notification endpoints and deliveries a person asks for (admins of the tenant): the UI,
the API, Django admin and the tasks call these. The outbox rows written for change records are
``notifications.outbox``'s; the worker's delivery bookkeeping is ``notifications.delivery``'s."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from arm.errors import Conflict
from arm.recording import annotate
from arm.writes import refuse_unknown, save, validate
from audit.services import record_change
from notifications import catalogue, outbox, signing
from notifications.choices import DeliveryStatus, EndpointKind
from notifications.models import Delivery, Endpoint, Event
from tenancy.choices import Role
from tenancy.context import Actor, current_actor
from tenancy.permissions import require_roles

ADMIN_ROLES = (Role.ADMIN,)
ENDPOINT_FIELDS = ("name", "kind", "url", "email_role", "event_types", "active")
ROTATION_OVERLAP = timedelta(hours=24)
MAX_ROTATION_OVERLAP = timedelta(days=7)


def _normalize(endpoint: Endpoint) -> None:
    # One shape per kind: an email endpoint has no URL; a webhook or Slack endpoint no role.
    if endpoint.kind == EndpointKind.EMAIL:
        endpoint.url = ""
        endpoint.email_role = endpoint.email_role or Role.APPROVER
    else:
        endpoint.email_role = ""


def endpoint_create(*, tenant, actor: Actor | None = None, pk=None, **data) -> tuple[Endpoint, str]:
    """Create an endpoint (admin); WEBHOOK_ENDPOINT_CREATED (its secret withheld). Returns the endpoint and
    its signing secret, the one time it is shown. ``pk`` fixes the id (the demo's well-known objects)."""
    actor = actor or current_actor()
    require_roles(actor, ADMIN_ROLES, "Managing notifications")
    refuse_unknown(data, ENDPOINT_FIELDS)
    secret = signing.new_secret()
    with transaction.atomic():
        endpoint = Endpoint(tenant=tenant, secret=secret, **data, **({"pk": pk} if pk is not None else {}))
        _normalize(endpoint)
        validate(endpoint, constraints=True)
        with annotate(endpoint, actor=actor):
            save(endpoint, force_insert=True)
    return endpoint, secret


def endpoint_check(*, tenant, endpoint: Endpoint | None = None, **data) -> None:
    """``endpoint_create``'s (or ``endpoint_update``'s) validation of ``data``, writing nothing."""
    refuse_unknown(data, ENDPOINT_FIELDS)
    obj = (
        Endpoint(tenant=tenant, secret=signing.SECRET_PREFIX)
        if endpoint is None
        else Endpoint.objects.get(pk=endpoint.pk)
    )
    for key, value in data.items():
        setattr(obj, key, value)
    _normalize(obj)
    validate(obj, exclude=[f for f in ENDPOINT_FIELDS if f not in data], constraints=True)


def endpoint_update(*, endpoint: Endpoint, actor: Actor | None = None, **changes) -> Endpoint:
    """Change an endpoint (admin); WEBHOOK_ENDPOINT_CHANGED with the changes (none: no write). Deliveries
    already queued go to it as it is when they are sent."""
    actor = actor or current_actor()
    require_roles(actor, ADMIN_ROLES, "Managing notifications")
    refuse_unknown(changes, ENDPOINT_FIELDS)
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        for key, value in changes.items():
            setattr(endpoint, key, value)
        _normalize(endpoint)
        validate(endpoint, constraints=True)
        if not endpoint.changed_fields():
            return endpoint
        with annotate(endpoint, actor=actor):
            save(endpoint)
    return endpoint


def endpoint_delete(*, endpoint: Endpoint, actor: Actor | None = None) -> None:
    """Delete an endpoint and its delivery log (admin); WEBHOOK_ENDPOINT_DELETED keeps what it was."""
    actor = actor or current_actor()
    require_roles(actor, ADMIN_ROLES, "Managing notifications")
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        with annotate(endpoint, actor=actor, deliveries=endpoint.deliveries.count()):
            endpoint.delete()


def endpoint_rotate_secret(
    *, endpoint: Endpoint, actor: Actor | None = None, overlap: timedelta = ROTATION_OVERLAP
) -> str:
    """A new signing secret (admin), returned the one time it is shown. For ``overlap`` the old secret
    signs too (two signatures per request), so a receiver can switch without refusing a request; a
    second rotation inside the overlap ends the first one's. WEBHOOK_ENDPOINT_SECRET_ROTATED (no secret)."""
    actor = actor or current_actor()
    require_roles(actor, ADMIN_ROLES, "Managing notifications")
    if overlap < timedelta(0) or overlap > MAX_ROTATION_OVERLAP:
        raise Conflict("The overlap is between 0 and 7 days.", code="invalid_overlap")
    secret = signing.new_secret()
    now = timezone.now()
    with transaction.atomic():
        endpoint = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        if overlap:
            endpoint.previous_secret, endpoint.previous_secret_expires_at = endpoint.secret, now + overlap
        else:
            endpoint.previous_secret, endpoint.previous_secret_expires_at = "", None
        endpoint.secret = secret
        with annotate(
            endpoint, "WEBHOOK_ENDPOINT_SECRET_ROTATED", actor=actor, overlap_seconds=int(overlap.total_seconds())
        ):
            save(endpoint)
    return secret


def send_test_event(*, endpoint: Endpoint, actor: Actor | None = None) -> Event:
    """Queue an ``arm.test`` event for this endpoint alone (admin), whatever it subscribes to and even
    when inactive; the worker sends it at once. WEBHOOK_TEST_SENT on the endpoint."""
    actor = actor or current_actor()
    require_roles(actor, ADMIN_ROLES, "Managing notifications")
    with transaction.atomic():
        event = outbox.queue(
            endpoint=endpoint, event_type=catalogue.TEST_EVENT, data=catalogue.test_event_data(endpoint)
        )
        record_change(
            tenant=endpoint.tenant,
            event_type="WEBHOOK_TEST_SENT",
            target=endpoint,
            payload={"event": event.webhook_id},
            actor=actor,
        )
        _deliver_now(event.deliveries.get())
    return event


def _deliver_now(delivery: Delivery) -> None:
    """Send this delivery on the task framework (``notifications.tasks.deliver``), enqueued with the write
    that asked for it; the drain sends it anyway if the task is lost."""
    from notifications.tasks import deliver

    deliver.enqueue(str(delivery.pk))


def _not_in_flight(now) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lt=now)


def redeliver(*, delivery: Delivery, actor: Actor | None = None) -> Delivery:
    """Queue a delivery again, now (admin): a new round of attempts with the same ``webhook-id`` (receivers
    that already have it drop it); a failed one waiting for its retry is tried now. Refused (409
    ``already_queued``) while it is pending or being sent: the conditional UPDATE decides, not a read.
    WEBHOOK_REDELIVERY_REQUESTED on the endpoint."""
    actor = actor or current_actor()
    require_roles(actor, ADMIN_ROLES, "Managing notifications")
    now = timezone.now()
    with transaction.atomic():
        requeued = (
            Delivery.objects.filter(pk=delivery.pk)
            .filter(status__in=[DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED, DeliveryStatus.DEAD])
            .filter(_not_in_flight(now))
            .update(
                status=DeliveryStatus.PENDING,
                next_attempt_at=now,
                lease_until=None,
                attempts_at_redelivery=F("attempts"),
            )
        )
        if not requeued:
            raise Conflict("This delivery is already queued or being sent.", code="already_queued")
        delivery = Delivery.objects.select_related("endpoint", "event").get(pk=delivery.pk)
        record_change(
            tenant=delivery.endpoint.tenant,
            event_type="WEBHOOK_REDELIVERY_REQUESTED",
            target=delivery.endpoint,
            payload={"event": delivery.event.webhook_id, "type": delivery.event.type, "delivery": str(delivery.pk)},
            actor=actor,
        )
        _deliver_now(delivery)
    return delivery


def redeliver_dead(*, endpoint: Endpoint, actor: Actor | None = None) -> int:
    """Queue every dead delivery of an endpoint again (admin), in one conditional UPDATE; one
    WEBHOOK_REDELIVERY_REQUESTED record with the count. Returns how many."""
    actor = actor or current_actor()
    require_roles(actor, ADMIN_ROLES, "Managing notifications")
    now = timezone.now()
    with transaction.atomic():
        count = Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.DEAD).update(
            status=DeliveryStatus.PENDING, next_attempt_at=now, lease_until=None, attempts_at_redelivery=F("attempts")
        )
        if count:
            record_change(
                tenant=endpoint.tenant,
                event_type="WEBHOOK_REDELIVERY_REQUESTED",
                target=endpoint,
                payload={"dead_deliveries": count},
                actor=actor,
            )
            outbox.wake_workers()
    return count
