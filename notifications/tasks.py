"""Background jobs on Django's task framework (``django_tasks`` with the database backend; the worker
runs them). What is a task and what is the drain loop:

- **The outbox is drained by ``delivery.drain``**, not by tasks: its correctness rests on Delivery rows
  with leases (a SIGKILLed worker's claim runs out and another worker sends), which a task backend that
  marks a task RUNNING and never reclaims it (django-tasks-db) cannot give, and one row per event and
  endpoint is already the queue.
- **One-off jobs a person starts are tasks**: sending a test event or a redelivery now (``deliver``: the
  same claim-and-lease as the drain, so the two never send one delivery at once, and the drain still sends
  it if the task is lost), and housekeeping (``prune_delivery_log``). They are enqueued in the transaction
  of the write that asked for them, and wake the worker at commit like an event does.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Exists, OuterRef
from django.utils import timezone
from django_tasks import task

from notifications import delivery
from notifications.choices import DeliveryStatus
from notifications.models import Delivery, Event


@task()
def deliver(delivery_id: str) -> int:
    """Send one delivery now, if it is still due and nobody holds it; returns 1 when it was sent."""
    return delivery.drain(1, ids=[delivery_id])


@task()
def prune_delivery_log(days: int = 30) -> int:
    """Delete events older than ``days`` whose every delivery is done (succeeded or dead), with their
    deliveries and attempts; returns how many events."""
    cutoff = timezone.now() - timedelta(days=days)
    open_deliveries = Delivery.objects.filter(event=OuterRef("pk")).exclude(
        status__in=[DeliveryStatus.SUCCEEDED, DeliveryStatus.DEAD]
    )
    old = Event.objects.filter(created_at__lt=cutoff).exclude(Exists(open_deliveries))
    deleted, _ = old.delete()
    return deleted
