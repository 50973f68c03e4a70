"""Endpoint services: secrets never reach a change record; one-off jobs (test event, redelivery) go on
Django's task framework through the delivery's lease; housekeeping keeps what is still being delivered."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from standardwebhooks.webhooks import Webhook

from notifications import services, tasks
from notifications.choices import DeliveryStatus
from notifications.models import Delivery, Event
from tests.conftest import change_records
from tests.notifications.factories import DeliveryFactory, EndpointFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _local_receiver_allowed(settings):
    settings.ARM_OUTBOUND_ALLOW_PRIVATE = True
    settings.ARM_OUTBOUND_ALLOW_HTTP = True


def test_secrets_never_reach_a_change_record(tenant, admin_member):
    endpoint, secret = services.endpoint_create(
        tenant=tenant, actor=admin_member.actor, name="ops", kind="webhook", url="https://hooks.example.com/a"
    )
    rotated = services.endpoint_rotate_secret(endpoint=endpoint, actor=admin_member.actor)
    records = change_records(target=endpoint)
    assert [r.event_type for r in records] == ["WEBHOOK_ENDPOINT_CREATED", "WEBHOOK_ENDPOINT_SECRET_ROTATED"]
    text = json.dumps([r.payload for r in records])
    assert secret not in text and rotated not in text
    assert "secret" in records[0].payload["values_withheld"]
    assert set(records[1].payload["values_withheld"]) == {"secret", "previous_secret"}
    assert records[1].payload["overlap_seconds"] == 24 * 3600


def test_a_test_event_is_sent_by_a_task_through_the_deliverys_lease(tenant, admin_member, receiver):
    endpoint = EndpointFactory(tenant=tenant, url=receiver.url, event_types=["version.tampered"])
    event = services.send_test_event(endpoint=endpoint, actor=admin_member.actor)

    (task,) = DBTaskResult.objects.all()
    assert task.task_path == "notifications.tasks.deliver"
    delivery = Delivery.objects.get(event=event)
    assert task.args_kwargs["args"] == [str(delivery.pk)]
    assert [r.event_type for r in change_records(target=endpoint)][-1] == "WEBHOOK_TEST_SENT"

    assert tasks.deliver.call(str(delivery.pk)) == 1
    assert tasks.deliver.call(str(delivery.pk)) == 0  # done: the drain's rules, not the task's, decide
    (request,) = receiver.received
    assert Webhook(endpoint.secret).verify(request.body, request.headers)["type"] == "arm.test"


def test_redelivering_every_dead_delivery_of_an_endpoint(tenant, admin_member):
    endpoint = EndpointFactory(tenant=tenant)
    dead = [DeliveryFactory(endpoint=endpoint, status=DeliveryStatus.DEAD, attempts=8) for _ in range(3)]
    DeliveryFactory(endpoint=endpoint)  # succeeded: stays
    assert services.redeliver_dead(endpoint=endpoint, actor=admin_member.actor) == 3
    for d in dead:
        d.refresh_from_db()
        assert (d.status, d.attempts_at_redelivery) == (DeliveryStatus.PENDING, 8)
    (record,) = change_records(target=endpoint, event_type="WEBHOOK_REDELIVERY_REQUESTED")
    assert record.payload["dead_deliveries"] == 3


def test_pruning_keeps_events_still_being_delivered(tenant):
    endpoint = EndpointFactory(tenant=tenant)
    old = timezone.now() - timedelta(days=40)
    done = DeliveryFactory(endpoint=endpoint)
    retrying = DeliveryFactory(
        endpoint=endpoint, status=DeliveryStatus.FAILED, next_attempt_at=timezone.now(), delivered_at=None
    )
    recent = DeliveryFactory(endpoint=endpoint)
    Event.objects.filter(pk__in=[done.event_id, retrying.event_id]).update(created_at=old)

    assert tasks.prune_delivery_log.call(days=30) >= 1
    assert set(Event.objects.values_list("pk", flat=True)) == {retrying.event_id, recent.event_id}
