"""POST /api/v1/approvals/{id}/withdraw/: the runtime that opened a PENDING request (a key bound to its
instance, the key that opened it, or the person behind that key) withdraws it. WITHDRAWN is terminal and
recorded, the request leaves the queue (list, UI, badge), waiters are answered, and a second withdrawal or one
of a decided request is 409 not_pending."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from approvals.selectors import pending_count
from approvals.services import approval_decide, approval_withdraw
from audit.choices import EventType
from audit.recording import recorded_update
from tenancy.context import Actor
from tenancy.models import ApiKey
from tests.approvals.conftest import URL
from tests.approvals.waits import POSTGRES, bearer, eventually, in_db, shared_connection, wait_server, wait_url
from tests.conftest import _client, change_records
from tests.factories import MembershipFactory, UserFactory, make_api_key
from tests.helpers import assert_error, race, run_async
from tests.policies.factories import make_approval, make_instance

PARAMS = {"to": "x@example.com"}


def withdraw(client, approval, note="no longer needed"):
    return client.post(f"{URL}{approval.pk}/withdraw/", {"note": note}, format="json")


@pytest.fixture
def bound(tenant, instance):
    """A runtime key bound to ``instance``: (key, client)."""
    key, secret = make_api_key(tenant, ["runtime"], instance=instance)
    return key, _client(secret)


def test_a_key_bound_to_the_instance_withdraws_its_pending_request(tenant, instance, evaluate, bound):
    key, client = bound
    opened = evaluate(instance, "email.send", params=PARAMS, client=client).json()
    approval = ApprovalRequest.objects.get(pk=opened["approval"])
    assert pending_count(tenant, timezone.now()) == 1
    response = withdraw(client, approval)
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["status"], data["note"], data["decided_by"]) == ("WITHDRAWN", "no longer needed", f"key:{key.prefix}")
    assert data["withdrawn_at"] and data["decided_at"] == data["withdrawn_at"]
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.WITHDRAWN and approval.withdrawn_at is not None
    [record] = change_records(approval, EventType.APPROVAL_WITHDRAWN)
    assert record.actor == f"key:{key.prefix}" and record.payload["changes"]["status"]["after"] == "WITHDRAWN"
    # gone from the queue: the pending list, its count and the badge
    assert pending_count(tenant, timezone.now()) == 0
    assert client.get(URL, {"status": "PENDING"}).json()["results"] == []
    assert [a["id"] for a in client.get(URL, {"status": "WITHDRAWN"}).json()["results"]] == [str(approval.pk)]


def test_another_key_of_the_same_instance_may_withdraw_it(tenant, instance, evaluate, bound):
    opened = evaluate(instance, "email.send", params=PARAMS).json()  # opened by the operator
    assert withdraw(bound[1], ApprovalRequest.objects.get(pk=opened["approval"])).status_code == 200


def test_the_unbound_key_that_opened_it_may_withdraw_it(runtime_key, pending):
    assert withdraw(runtime_key[1], pending).json()["status"] == "WITHDRAWN"


def test_the_person_behind_the_key_may_withdraw_it(tenant, instance, evaluate):
    alice = UserFactory(username="alice")
    MembershipFactory(tenant=tenant, user=alice, roles=["operator"])
    full, prefix, key_hash = ApiKey.generate()
    ApiKey.objects.create(
        tenant=tenant, name="alice's", prefix=prefix, key_hash=key_hash, roles=["operator"], principal="user:alice"
    )
    opened = evaluate(instance, "email.send", params=PARAMS, client=_client(full)).json()
    session = APIClient()
    session.force_login(alice)
    response = withdraw(session, ApprovalRequest.objects.get(pk=opened["approval"]))
    assert response.status_code == 200 and response.json()["decided_by"] == "user:alice"


def test_nobody_else_may_withdraw_it(tenant, policy, pending, approver, admin_member):
    for member in (approver, admin_member):
        assert_error(withdraw(member.client, pending), 403, "not_requester")
    other_instance = make_instance(tenant, policy=policy)
    _, other_key = make_api_key(tenant, ["runtime"], instance=other_instance)
    assert_error(withdraw(_client(other_key), pending), 404, "not_found")  # it cannot even see it
    _, unbound = make_api_key(tenant, ["runtime"], name="another unbound key")
    assert_error(withdraw(_client(unbound), pending), 404, "not_found")
    pending.refresh_from_db()
    assert pending.status == ApprovalStatus.PENDING


def test_only_a_pending_request_can_be_withdrawn(runtime_key, pending, approver):
    client = runtime_key[1]
    assert withdraw(client, pending).status_code == 200
    assert_error(withdraw(client, pending), 409, "not_pending", contains=["WITHDRAWN"])
    decided = make_approval(pending.instance, params={"n": 2}, requester=pending.requester)
    approval_decide(approval=decided, approve=False, actor=approver.actor)
    assert_error(withdraw(client, decided), 409, "not_pending", contains=["DENIED"])
    assert len(change_records(event_type=EventType.APPROVAL_WITHDRAWN)) == 1


def test_an_overdue_request_expires_instead(runtime_key, pending):
    recorded_update(ApprovalRequest.objects.filter(pk=pending.pk), expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(withdraw(runtime_key[1], pending), 409, "not_pending", contains=["EXPIRED"])
    assert len(change_records(pending, EventType.APPROVAL_EXPIRED)) == 1


def test_a_withdrawn_request_cannot_be_decided_nor_grant(instance, evaluate, runtime_key, pending, approver):
    withdraw(runtime_key[1], pending)
    assert_error(approver.client.post(f"{URL}{pending.pk}/approve/", {}, format="json"), 409, "already_decided")
    data = evaluate(instance, "email.send", params=PARAMS, approval=str(pending.pk)).json()
    assert data["decision"] == "NEEDS_APPROVAL" and "WITHDRAWN" in data["reasons"][1]["message"]


def test_the_note_is_limited(runtime_key, pending):
    assert_error(withdraw(runtime_key[1], pending, note="x" * 2001), 400, "validation_error")


def test_the_approval_center_no_longer_lists_it(runtime_key, pending, approver):
    withdraw(runtime_key[1], pending)
    client = Client()
    client.force_login(approver.user)
    html = client.get(reverse("ui:approvals")).content.decode()
    assert 'data-testid="approval-card"' not in html and 'data-testid="pending-badge"' not in html
    history = client.get(reverse("ui:approvals"), {"tab": "history"}).content.decode()
    assert 'data-status="WITHDRAWN"' in history


@pytest.mark.django_db(transaction=POSTGRES)
def test_a_wait_is_answered_when_the_request_is_withdrawn(tenant, instance):
    key, secret = make_api_key(tenant, ["runtime"], instance=instance)
    approval = make_approval(instance)
    actor = Actor(ref=f"key:{key.prefix}", api_key=key, roles=frozenset(["runtime"]))

    async def scenario(shared):
        async with wait_server(shared=shared) as (client, hub):
            request = asyncio.ensure_future(client.get(wait_url(approval, 30), headers=bearer(secret)))
            await eventually(lambda: hub.held == 1 and (hub.listening or not POSTGRES), what="the wait held")
            await in_db(hub, lambda: approval_withdraw(approval=approval, actor=actor))
            return await request

    if POSTGRES:
        response = run_async(scenario(None))
    else:
        with shared_connection() as shared:
            response = run_async(scenario(shared))
    assert response.status_code == 200 and response.json()["status"] == "WITHDRAWN"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (row locks across connections)")
@pytest.mark.django_db(transaction=True)
def test_a_withdrawal_and_a_decision_at_once_one_wins(tenant, instance, approver):
    key, secret = make_api_key(tenant, ["runtime"], instance=instance)
    approval = make_approval(instance)
    responses = race(
        [
            lambda: _client(secret).post(f"{URL}{approval.pk}/withdraw/", {}, format="json"),
            lambda: approver.client.post(f"{URL}{approval.pk}/approve/", {}, format="json"),
        ]
    )
    assert sorted(r.status_code for r in responses) == [200, 409], [r.json() for r in responses]
    approval.refresh_from_db()
    winner = next(r for r in responses if r.status_code == 200).json()
    assert approval.status == winner["status"] in (ApprovalStatus.WITHDRAWN, ApprovalStatus.APPROVED)
    recorded = change_records(approval, EventType.APPROVAL_WITHDRAWN) + change_records(
        approval, EventType.APPROVAL_DECIDED
    )
    assert len(recorded) == 1
