"""The outbox: events are written in the transaction of the change record that causes them, only for
tenants with an active endpoint subscribed to the type, one delivery per such endpoint (issue 25 item 2)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.services import approval_decide, approval_expire, approval_open, approval_withdraw
from audit.services import record_change
from ledger.models import Budget
from notifications import catalogue, outbox
from notifications.choices import DeliveryStatus
from notifications.models import Delivery, Event
from registry.services import instance_transition, version_verify_integrity
from tenancy.context import Actor
from tests.helpers import tamper_genome
from tests.notifications.factories import EndpointFactory
from tests.policies.factories import make_instance

pytestmark = pytest.mark.django_db


def _open(instance, key, *, tool="payments.refund", timeout=3600):
    approval, created = approval_open(
        tenant=instance.tenant,
        instance=instance,
        tool=tool,
        params={"amount": 12},
        params_hash="a" * 64,
        risk="high",
        reasons=[{"code": "needs_approval", "message": "high risk"}],
        timeout_seconds=timeout,
        actor=Actor.for_key(key),
    )
    assert created
    return approval


@pytest.fixture
def instance(tenant):
    return make_instance(tenant)


def test_committed_change_writes_one_event_and_a_delivery_per_subscribed_endpoint(
    tenant, other_tenant, instance, runtime_key
):
    everything = EndpointFactory(tenant=tenant, event_types=[])
    approvals = EndpointFactory(tenant=tenant, event_types=["approval.requested", "approval.decided"])
    EndpointFactory(tenant=tenant, event_types=["version.tampered"])  # not subscribed
    EndpointFactory(tenant=tenant, event_types=[], active=False)  # inactive
    EndpointFactory(tenant=other_tenant, event_types=[])  # another tenant's

    approval = _open(instance, runtime_key[0])

    event = Event.objects.get()
    assert (event.tenant_id, event.type) == (tenant.pk, "approval.requested")
    assert event.payload["type"] == "approval.requested"
    assert event.payload["data"]["approval"]["id"] == str(approval.pk)
    assert event.payload["data"]["tenant"] == "acme"
    assert event.payload["data"]["change_record"]["event"] == "APPROVAL_REQUESTED"
    assert "params" not in event.payload["data"]["approval"]  # personal data stays in ARM
    deliveries = Delivery.objects.filter(event=event)
    assert {d.endpoint_id for d in deliveries} == {everything.pk, approvals.pk}
    assert {d.status for d in deliveries} == {DeliveryStatus.PENDING}
    assert all(d.next_attempt_at is not None and d.tenant_id == tenant.pk for d in deliveries)


def test_rolled_back_change_leaves_no_event(tenant, instance, runtime_key):
    EndpointFactory(tenant=tenant)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        _open(instance, runtime_key[0])
        assert Event.objects.count() == 1  # written in the change's transaction...
        raise Abort

    assert Event.objects.count() == 0  # ...and gone with it
    assert Delivery.objects.count() == 0


def test_a_tenant_without_endpoints_costs_one_query_then_none(tenant, instance, runtime_key):
    def endpoint_queries(tool):
        with CaptureQueriesContext(connection) as ctx:
            _open(instance, runtime_key[0], tool=tool)
        return [q["sql"] for q in ctx.captured_queries if "notifications_endpoint" in q["sql"]]

    assert len(endpoint_queries("a.first")) == 1
    assert endpoint_queries("a.second") == []  # this process remembers: nobody subscribes here
    assert Event.objects.count() == 0

    EndpointFactory(tenant=tenant, event_types=["approval.requested"])  # saved here: seen at once
    assert len(endpoint_queries("a.third")) == 1
    assert Event.objects.get().payload["data"]["approval"]["tool"] == "a.third"


def test_an_endpoint_deleted_elsewhere_gets_nothing_though_remembered(tenant, instance, runtime_key):
    endpoint = EndpointFactory(tenant=tenant)
    _open(instance, runtime_key[0], tool="a.first")  # remembered: the tenant subscribes to everything
    type(endpoint).objects.filter(pk=endpoint.pk).delete()  # a delete this process's receivers do not see...
    outbox._subscriptions[tenant.pk] = (float("inf"), frozenset({"*"}))  # ...as if it happened elsewhere
    _open(instance, runtime_key[0], tool="a.second")
    assert Event.objects.count() == 1  # only the first: the rows are read again before writing


def test_a_record_no_type_comes_from_costs_no_query(tenant, instance, runtime_key):
    EndpointFactory(tenant=tenant)
    with CaptureQueriesContext(connection) as ctx:
        instance_transition(instance=instance, to="PAUSED", actor=Actor.system())
    assert not [q for q in ctx.captured_queries if "notifications_" in q["sql"]]
    assert Event.objects.count() == 0


# ---------------------------------------------------------------- one test per type n1 builds


def _only_event(event_type):
    events = list(Event.objects.filter(type=event_type))
    assert len(events) == 1, [e.type for e in Event.objects.all()]
    return events[0].payload["data"]


def test_approval_decided(tenant, instance, runtime_key, approver):
    EndpointFactory(tenant=tenant, event_types=["approval.decided"])
    approval = _open(instance, runtime_key[0])
    approval_decide(approval=approval, approve=False, note="not today", actor=approver.actor)
    data = _only_event("approval.decided")
    assert data["approval"]["status"] == "DENIED"
    assert data["approval"]["note"] == "not today"
    assert data["approval"]["decided_by"] == approver.actor.ref
    assert data["url"].endswith(f"/approvals/?approval={approval.pk}")
    assert not Event.objects.filter(type="approval.requested").exists()  # not subscribed


def test_approval_expired(tenant, instance, runtime_key):
    EndpointFactory(tenant=tenant, event_types=["approval.expired"])
    approval = _open(instance, runtime_key[0], timeout=1)
    assert approval_expire(approval=approval, now=timezone.now() + timedelta(seconds=5))
    assert _only_event("approval.expired")["approval"]["status"] == "EXPIRED"


def test_approval_withdrawn(tenant, instance, runtime_key):
    EndpointFactory(tenant=tenant, event_types=["approval.withdrawn"])
    approval = _open(instance, runtime_key[0])
    approval_withdraw(approval=approval, note="not needed", actor=Actor.for_key(runtime_key[0]))
    data = _only_event("approval.withdrawn")
    assert data["approval"]["status"] == "WITHDRAWN"
    assert data["instance"] == {"id": str(instance.pk), "name": instance.name}


def test_version_tampered_and_its_instances_quarantined(tenant, instance):
    EndpointFactory(tenant=tenant, event_types=["version.tampered", "instance.quarantined"])
    version = instance.version
    tamper_genome(version)
    version_verify_integrity(version=version, actor=Actor.system())
    data = _only_event("version.tampered")
    assert data["version"]["id"] == str(version.pk)
    assert data["stored_hash"] == version.genome_hash
    assert data["computed_hash"] != data["stored_hash"]
    quarantined = _only_event("instance.quarantined")
    assert quarantined["instance"]["id"] == str(instance.pk)
    assert quarantined["from_state"] == "ACTIVE"
    assert quarantined["reason"] == "integrity check failed"


def test_a_person_quarantining_an_instance(tenant, instance, approver):
    EndpointFactory(tenant=tenant, event_types=["instance.quarantined"])
    instance_transition(instance=instance, to="QUARANTINED", reason="odd calls", actor=Actor.system())
    assert _only_event("instance.quarantined")["reason"] == "odd calls"


def test_budget_threshold_crossed(tenant):
    EndpointFactory(tenant=tenant, event_types=["budget.threshold_crossed"])
    budget = Budget.objects.create(
        tenant=tenant, name="support-monthly", scope="tenant", period="monthly", amount_usd=Decimal("1000")
    )
    record_change(
        tenant=tenant,
        event_type="BUDGET_THRESHOLD_CROSSED",
        target=budget,
        payload={
            "budget": "support-monthly",
            "threshold": 80,
            "period": "monthly",
            "period_start": "2026-12-01",
            "spend_usd": "812.4",
            "amount_usd": "1000.00",
        },
    )
    data = _only_event("budget.threshold_crossed")
    assert data["budget"] == {"id": str(budget.pk), "name": "support-monthly"}
    assert (data["threshold_percent"], data["spend_usd"]) == (80, "812.4")


def test_every_documented_type_has_an_example_and_every_type_is_subscribable():
    assert set(catalogue.EVENT_TYPES) <= set(catalogue.SUBSCRIBABLE)
    for spec in catalogue.CATALOGUE.values():
        assert spec.example, spec.type
        assert spec.type in catalogue.SUBSCRIBABLE or spec.type == catalogue.TEST_EVENT
