"""The transactional outbox: events written in the transaction of the change record that causes them.

``connect()`` (``NotificationsConfig.ready``) registers ``on_records`` with ``audit.hooks``, which calls it
after every append, inside the append's transaction. For each record whose event name is a source in the
catalogue (``catalogue.BY_SOURCE``: a dict lookup, then the spec's ``matches`` on the record; most
records stop there at no cost) it reads the tenant's active endpoints (one indexed query per append
batch, and only then; not even that while this process knows no endpoint of the tenant wants those
types: see "which tenants subscribe" below), and for each event type one of them subscribes to and
whose builder answers data, writes one ``Event`` and one ``Delivery`` per subscribed endpoint. A
rolled-back change takes its events with it; a committed one has them, due now.

On PostgreSQL it also runs ``pg_notify('arm_worker', '')``, which PostgreSQL delivers at COMMIT (never
for a rollback, once however many events the transaction wrote), so a listening worker wakes at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from django.conf import settings
from django.db import connection
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from audit import hooks
from audit.services import to_json
from notifications import catalogue
from notifications.choices import DeliveryStatus
from notifications.models import Delivery, Endpoint, Event

WAKE_CHANNEL = "arm_worker"


def envelope(event_type: str, timestamp: str, data: dict, *, tenant: str, record=None) -> dict:
    """The Standard Webhooks body of an event: ``type``, ``timestamp``, ``data`` (the builder's data, with
    the tenant's slug and the change record it came from)."""
    body = {"tenant": tenant, **data}
    if record is not None:
        body["change_record"] = {"seq": record.seq, "event": record.event_type, "actor": record.actor}
    return {"type": event_type, "timestamp": timestamp, "data": body}


def wake_workers() -> None:
    """Wake listening workers when the current transaction commits (PostgreSQL; SQLite workers poll)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [WAKE_CHANNEL])


def on_records(records: Sequence) -> None:
    candidates = []
    for record in records:
        specs = [
            spec
            for spec in catalogue.BY_SOURCE.get(record.event_type, ())
            if spec.matches is None or spec.matches(record)
        ]
        if specs:
            candidates.append((record, specs))
    if not candidates:
        return
    tenant_id = candidates[0][0].tenant_id
    if not _may_subscribe(tenant_id, {spec.type for _, specs in candidates for spec in specs}):
        return
    endpoints = list(
        Endpoint.objects.filter(tenant_id=tenant_id, active=True)
        .order_by()
        .values_list("id", "event_types", "tenant__slug")
    )
    _remember(tenant_id, endpoints)
    if not endpoints:
        return
    now = timezone.now()
    events, deliveries = [], []
    for record, specs in candidates:
        for spec in specs:
            subscribers = [pk for pk, types, _ in endpoints if not types or spec.type in types]
            if not subscribers:
                continue
            data = spec.build(record)
            if data is None:
                continue
            timestamp = record.created_at.isoformat() if record.created_at else now.isoformat()
            event = Event(
                id=uuid.uuid4(),
                tenant_id=tenant_id,
                type=spec.type,
                payload=to_json(envelope(spec.type, timestamp, data, tenant=endpoints[0][2], record=record)),
                record_seq=record.seq,
                created_at=now,
            )
            events.append(event)
            deliveries.extend(
                Delivery(
                    tenant_id=tenant_id,
                    event=event,
                    endpoint_id=pk,
                    status=DeliveryStatus.PENDING,
                    next_attempt_at=now,
                    created_at=now,
                )
                for pk in subscribers
            )
    if events:
        Event.objects.bulk_create(events)
        Delivery.objects.bulk_create(deliveries)
        wake_workers()


def queue(*, endpoint: Endpoint, event_type: str, data: dict) -> Event:
    """Write one event for one endpoint only (``send_test_event``), in the caller's transaction."""
    now = timezone.now()
    event = Event.objects.create(
        tenant_id=endpoint.tenant_id,
        type=event_type,
        payload=to_json(envelope(event_type, now.isoformat(), data, tenant=endpoint.tenant.slug)),
        created_at=now,
    )
    Delivery.objects.create(
        tenant_id=endpoint.tenant_id,
        event=event,
        endpoint=endpoint,
        status=DeliveryStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
    )
    wake_workers()
    return event


# ---------------------------------------------------------------- which tenants subscribe to what
#
# The event types each tenant's active endpoints subscribe to, as this process last read them, for
# ARM_NOTIFICATION_CACHE_SECONDS: a record no endpoint can want (an approval opened by an evaluation, in a
# tenant without endpoints) then costs no query at all. An endpoint saved in this process is seen at once
# (the receivers below forget its tenant); one saved in another process within that time. What the cache
# says "yes" to is read again from the rows before anything is written, so a deactivated or deleted
# endpoint never gets a delivery.

_ALL = "*"
_subscriptions: dict = {}  # tenant id -> (monotonic deadline, frozenset of types, or {"*"})


def _may_subscribe(tenant_id, types: set[str]) -> bool:
    cached = _subscriptions.get(tenant_id)
    if cached is None or cached[0] < time.monotonic():
        return True
    return _ALL in cached[1] or bool(cached[1] & types)


def _remember(tenant_id, endpoints) -> None:
    types: set[str] = set()
    for _pk, event_types, _slug in endpoints:
        types.update(event_types or (_ALL,))
    _subscriptions[tenant_id] = (time.monotonic() + settings.ARM_NOTIFICATION_CACHE_SECONDS, frozenset(types))


def forget(sender=None, instance=None, **kwargs) -> None:
    """Drop what this process knows of the endpoint's tenant (``post_save``/``post_delete`` of Endpoint)."""
    if instance is not None:
        _subscriptions.pop(instance.tenant_id, None)


def connect() -> None:
    hooks.on_record(on_records)
    post_save.connect(forget, sender=Endpoint, dispatch_uid="notifications.outbox.forget")
    post_delete.connect(forget, sender=Endpoint, dispatch_uid="notifications.outbox.forget")
