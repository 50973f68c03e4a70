"""Races settled by the database (PostgreSQL only: SQLite serializes every writer anyway, and its
DELETE-based flush is blocked by the audit triggers in transactional tests)."""

from decimal import Decimal

import pytest
from django.db import connection

from approvals.choices import ApprovalStatus
from audit.choices import EventType
from policies.models import InstanceSpend, PolicyDecision
from tests.approvals.conftest import URL
from tests.conftest import change_records
from tests.helpers import member_with, race
from tests.policies.conftest import EVALUATE
from tests.policies.factories import PolicyFactory, make_approval, make_instance

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (row locks across connections)"),
    pytest.mark.django_db(transaction=True),
]


def test_two_deciders_at_once_one_wins_one_gets_409(tenant, policy, instance, cast):
    approval = make_approval(instance)
    second = member_with(tenant, ["approver"], "approver-two")
    clients = [cast["approver"].client, second.client]
    verbs = ["approve", "deny"]
    responses = race(
        [
            lambda c=c, v=v: c.post(f"{URL}{approval.pk}/{v}/", {}, format="json")
            for c, v in zip(clients, verbs, strict=True)
        ]
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.json() for r in responses]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["code"] == "already_decided"
    assert len(change_records(approval, EventType.APPROVAL_DECIDED)) == 1
    approval.refresh_from_db()
    winner = next(r for r in responses if r.status_code == 200).json()
    assert approval.status == winner["status"] != ApprovalStatus.PENDING


def test_two_evaluations_with_one_approval_allow_exactly_one_call(tenant, policy, instance, cast):
    approval = make_approval(instance, params={"to": "x"}, status=ApprovalStatus.APPROVED, decided_by="key:a")
    body = {"instance": str(instance.pk), "tool": "email.send", "params": {"to": "x"}, "approval": str(approval.pk)}
    clients = [cast["operator"].client, member_with(tenant, ["operator"], "op-two").client]
    responses = race([lambda c=c: c.post(EVALUATE, body, format="json") for c in clients])
    assert sorted(r.json()["decision"] for r in responses) == ["ALLOW", "NEEDS_APPROVAL"]
    approval.refresh_from_db()
    assert approval.used_at is not None


def test_concurrent_allows_never_overshoot_the_daily_limit(tenant, cast):
    policy = PolicyFactory(tenant=tenant, autonomy_tier=5, cost_limit_daily_usd=Decimal("10.00"))
    instance = make_instance(tenant, policy=policy)
    body = {"instance": str(instance.pk), "tool": "crm.lookup", "estimated_cost_usd": "3.00"}
    clients = [member_with(tenant, ["operator"], f"op-{i}").client for i in range(5)]
    responses = race([lambda c=c: c.post(EVALUATE, body, format="json") for c in clients])
    decisions = sorted(r.json()["decision"] for r in responses)
    assert decisions == ["ALLOW"] * 3 + ["DENY"] * 2
    assert InstanceSpend.objects.get(instance=instance, period="day").amount_usd == Decimal("9.00")
    assert PolicyDecision.objects.filter(instance=instance).count() == 5


def test_concurrent_identical_calls_open_one_approval(tenant, policy, instance, cast):
    body = {"instance": str(instance.pk), "tool": "email.send", "params": {"to": "y"}}
    clients = [member_with(tenant, ["operator"], f"op-{i}").client for i in range(4)]
    responses = race([lambda c=c: c.post(EVALUATE, body, format="json") for c in clients])
    assert {r.json()["decision"] for r in responses} == {"NEEDS_APPROVAL"}
    assert len({r.json()["approval"] for r in responses}) == 1
    assert len(change_records(event_type=EventType.APPROVAL_REQUESTED)) == 1
