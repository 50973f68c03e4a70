"""delivery.drain: claims with a lease, signs per Standard Webhooks, records every attempt, retries with
backoff and dead-letters; redelivery starts a new round under the same webhook-id (in-process, against a
real local receiver)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from arm.errors import Conflict
from notifications import delivery, outbox, services
from notifications.choices import AttemptOutcome, DeliveryStatus
from notifications.models import Delivery
from tests.notifications.factories import EndpointFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _local_receiver_allowed(settings):
    settings.ARM_OUTBOUND_ALLOW_PRIVATE = True
    settings.ARM_OUTBOUND_ALLOW_HTTP = True
    settings.ARM_WEBHOOK_MAX_ATTEMPTS = 3
    settings.ARM_WEBHOOK_BACKOFF_BASE_SECONDS = 10


@pytest.fixture
def endpoint(tenant, receiver):
    return EndpointFactory(tenant=tenant, url=receiver.url)


def _queue(endpoint):
    event = outbox.queue(endpoint=endpoint, event_type="arm.test", data={"message": "hello"})
    return event, Delivery.objects.get(event=event)


def _make_due(d):
    Delivery.objects.filter(pk=d.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_a_delivery_is_sent_signed_and_recorded(endpoint, receiver):
    event, d = _queue(endpoint)

    assert delivery.drain() == 1

    (request,) = receiver.received
    body = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert body == event.payload
    assert request.headers["webhook-id"] == event.webhook_id
    assert request.headers["content-type"] == "application/json"
    d.refresh_from_db()
    assert (d.status, d.attempts, d.last_status_code, d.lease_until, d.next_attempt_at) == (
        DeliveryStatus.SUCCEEDED,
        1,
        200,
        None,
        None,
    )
    assert d.delivered_at is not None
    assert [(a.number, a.outcome, a.status_code) for a in d.attempt_log.all()] == [(1, AttemptOutcome.SUCCEEDED, 200)]
    assert delivery.drain() == 0  # nothing due any more


def test_failures_back_off_exponentially_then_the_delivery_is_dead(endpoint, receiver):
    receiver.respond = lambda item: (500, 0)
    _event, d = _queue(endpoint)
    waits = []
    for _ in range(3):
        before = timezone.now()
        assert delivery.drain() == 1
        d.refresh_from_db()
        if d.status == DeliveryStatus.FAILED:
            waits.append((d.next_attempt_at - before).total_seconds())
            assert delivery.drain() == 0  # not due before its next attempt
            _make_due(d)

    assert d.status == DeliveryStatus.DEAD
    assert d.next_attempt_at is None
    assert (d.attempts, d.last_status_code, d.last_error) == (3, 500, "answered 500")
    # base 10 s doubling, each with up to half of it added at random
    assert 10 <= waits[0] <= 15.5 and 20 <= waits[1] <= 30.5
    assert [a.outcome for a in d.attempt_log.all()] == [
        AttemptOutcome.FAILED,
        AttemptOutcome.FAILED,
        AttemptOutcome.DEAD,
    ]
    assert delivery.drain() == 0
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # one id on every retry


def test_redelivery_starts_a_new_round_under_the_same_webhook_id(endpoint, receiver, admin_member):
    receiver.respond = lambda item: (503, 0)
    event, d = _queue(endpoint)
    for _ in range(3):
        delivery.drain()
        _make_due(d)
    d.refresh_from_db()
    assert d.status == DeliveryStatus.DEAD

    receiver.respond = None
    services.redeliver(delivery=d, actor=admin_member.actor)
    with pytest.raises(Conflict) as refused:
        services.redeliver(delivery=d, actor=admin_member.actor)  # already queued
    assert refused.value.code == "already_queued"
    assert delivery.drain() == 1

    d.refresh_from_db()
    assert (d.status, d.attempts, d.attempts_at_redelivery) == (DeliveryStatus.SUCCEEDED, 4, 3), d.last_error
    assert [a.number for a in d.attempt_log.all()] == [1, 2, 3, 4]
    assert {r.headers["webhook-id"] for r in receiver.received} == {event.webhook_id}


def test_a_claimed_delivery_waits_for_its_lease_then_another_worker_takes_it(endpoint, receiver):
    _event, d = _queue(endpoint)
    lease, rows = delivery.claim(10)
    assert [r.pk for r in rows] == [d.pk]
    assert delivery.claim(10) == (None, [])  # held: a second worker skips it

    # The first worker dies (its lease runs out); a second one claims the delivery again
    Delivery.objects.filter(pk=d.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert delivery.drain() == 1
    d.refresh_from_db()
    assert (d.status, d.attempts) == (DeliveryStatus.SUCCEEDED, 2)

    # The first worker, had it come back, would write nothing under its lost lease
    stale = delivery.Outcome(rows[0], timezone.now(), 5, 500, "answered 500")
    assert delivery.record(lease, [stale]) == 0
    d.refresh_from_db()
    assert d.status == DeliveryStatus.SUCCEEDED


def test_during_a_rotation_both_secrets_sign_until_the_overlap_ends(endpoint, receiver, admin_member):
    old = endpoint.secret
    new = services.endpoint_rotate_secret(endpoint=endpoint, actor=admin_member.actor, overlap=timedelta(hours=1))
    _queue(endpoint)
    delivery.drain()
    request = receiver.received[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(request.body, request.headers)
    Webhook(new).verify(request.body, request.headers)

    endpoint.refresh_from_db()
    endpoint.previous_secret_expires_at = timezone.now()  # the overlap is over
    endpoint.save()
    _queue(endpoint)
    delivery.drain()
    request = receiver.received[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(request.body, request.headers)


def test_a_redirect_is_not_followed_and_fails_the_attempt(endpoint, receiver):
    receiver.respond = lambda item: (302, 0, {"Location": "http://169.254.169.254/latest/meta-data/"})
    _event, d = _queue(endpoint)
    delivery.drain()
    d.refresh_from_db()
    assert (d.status, d.last_status_code) == (DeliveryStatus.FAILED, 302)
    assert len(receiver.received) == 1


def test_an_inactive_endpoint_gets_nothing_and_its_deliveries_are_dead(endpoint, receiver, admin_member):
    event = outbox.queue(endpoint=endpoint, event_type="approval.requested", data={})
    services.endpoint_update(endpoint=endpoint, actor=admin_member.actor, active=False)
    delivery.drain()
    d = Delivery.objects.get(event=event)
    assert (d.status, d.last_error) == (DeliveryStatus.DEAD, "The endpoint is inactive.")
    assert receiver.received == []


def test_a_receiver_that_is_down_is_a_failed_attempt_with_the_reason(tenant, receiver):
    endpoint = EndpointFactory(tenant=tenant, url="http://127.0.0.1:9/hooks")  # discard port: nobody listens
    _event, d = _queue(endpoint)
    delivery.drain()
    d.refresh_from_db()
    assert d.status == DeliveryStatus.FAILED
    assert d.last_status_code is None
    assert "refused" in d.last_error


def test_seconds_until_due_names_the_next_retry(endpoint, receiver):
    assert delivery.seconds_until_due() is None
    receiver.respond = lambda item: (500, 0)
    _queue(endpoint)
    delivery.drain()
    assert 9 <= delivery.seconds_until_due() <= 15.5
