"""Races of one idempotency key, settled by the database (PostgreSQL: separate connections). Each test holds
its evaluations at a barrier right after they read what the key names (nothing yet, or a pending or approved
call), so every one of them decides before any writes; the unique key constraint and the conditional
updates then let one win, and the others roll back and answer from the key."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from policies import services
from policies.models import IdempotentCall, InstanceSpend, PolicyDecision
from tests.helpers import member_with, race
from tests.policies.conftest import EVALUATE

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (row locks across connections)"),
    pytest.mark.django_db(transaction=True),
]

MAIL = {"to": "board@example.com"}


@pytest.fixture
def together(monkeypatch):
    """``together(n)``: the next n evaluations wait for each other after reading the key (once each)."""

    def hold(n: int):
        barrier, seen = threading.Barrier(n), threading.local()
        load = services._load_context

        def load_then_wait(*args, **kwargs):
            context = load(*args, **kwargs)
            if not getattr(seen, "waited", False):
                seen.waited = True
                barrier.wait(timeout=10)
            return context

        monkeypatch.setattr(services, "_load_context", load_then_wait)

    return hold


@pytest.fixture
def clients(tenant):
    return [member_with(tenant, ["operator"], f"op-{i}").client for i in range(2)]


def post_all(clients, bodies):
    responses = race(
        [lambda c=c, b=b: c.post(EVALUATE, b, format="json") for c, b in zip(clients, bodies, strict=True)]
    )
    for response in responses:
        assert not isinstance(response, Exception) and response.status_code == 200, response
    return [r.json() for r in responses]


def test_two_first_calls_with_one_key_make_one_decision_and_spend_once(instance, clients, together):
    together(2)
    body = {"instance": str(instance.pk), "tool": "crm.lookup", "estimated_cost_usd": "1.00", "idempotency_key": "k"}
    answers = post_all(clients, [body, body])
    assert {a["decision"] for a in answers} == {"ALLOW"}
    assert len({a["decision_id"] for a in answers}) == 1
    assert sorted(a["replay"] for a in answers) == [False, True]
    assert PolicyDecision.objects.filter(instance=instance).count() == 1
    assert InstanceSpend.objects.get(instance=instance, period="day").amount_usd == Decimal("1.00")
    assert IdempotentCall.objects.filter(instance=instance).count() == 1


def test_two_first_calls_with_one_key_open_one_approval(instance, clients, together):
    together(2)
    body = {"instance": str(instance.pk), "tool": "email.send", "params": MAIL, "idempotency_key": "k"}
    answers = post_all(clients, [body, body])
    assert {a["decision"] for a in answers} == {"NEEDS_APPROVAL"}
    assert len({a["approval"] for a in answers}) == 1 and len({a["decision_id"] for a in answers}) == 1
    assert ApprovalRequest.objects.count() == 1 and PolicyDecision.objects.count() == 1


def test_two_resumed_calls_after_approval_are_allowed_once(instance, clients, approver, together):
    body = {"instance": str(instance.pk), "tool": "email.send", "params": MAIL, "idempotency_key": "k"}
    opened = clients[0].post(EVALUATE, body, format="json").json()
    approval = ApprovalRequest.objects.get(pk=opened["approval"])
    approval_decide(approval=approval, approve=True, actor=approver.actor)
    together(2)
    answers = post_all(clients, [body, body])
    assert {a["decision"] for a in answers} == {"ALLOW"}
    assert len({a["decision_id"] for a in answers}) == 1
    assert sorted(a["replay"] for a in answers) == [False, True]
    assert ApprovalRequest.objects.count() == 1  # never a second request
    assert sorted(PolicyDecision.objects.values_list("decision", flat=True)) == ["ALLOW", "NEEDS_APPROVAL"]


def test_identical_calls_with_their_own_keys_get_their_own_approvals(instance, clients, together):
    together(2)
    bodies = [
        {"instance": str(instance.pk), "tool": "email.send", "params": MAIL, "idempotency_key": key}
        for key in ("a", "b")
    ]
    answers = post_all(clients, bodies)
    assert {a["decision"] for a in answers} == {"NEEDS_APPROVAL"}
    assert len({a["approval"] for a in answers}) == 2
