"""Who approved, as the runtime and the API are told: the person behind the key ("user:alice via
key:c1b3d4e5"), and an ALLOW through an approval says what happened (approval_granted, by whom) only."""

import pytest
from rest_framework.test import APIClient

from approvals.models import ApprovalRequest
from tenancy.models import ApiKey
from tests.approvals.conftest import URL
from tests.conftest import _client
from tests.factories import MembershipFactory, UserFactory

PARAMS = {"to": "x@example.com"}


@pytest.fixture
def alices_key(tenant):
    """An approver key minted for alice: (its reference, a client)."""
    MembershipFactory(tenant=tenant, user=UserFactory(username="alice"), roles=["approver"])
    full, prefix, key_hash = ApiKey.generate()
    ApiKey.objects.create(
        tenant=tenant, name="alice's", prefix=prefix, key_hash=key_hash, roles=["approver"], principal="user:alice"
    )
    return f"key:{prefix}", _client(full)


def test_the_decider_is_the_person_behind_the_key(instance, evaluate, alices_key):
    ref, client = alices_key
    opened = evaluate(instance, "email.send", params=PARAMS).json()
    approved = client.post(f"{URL}{opened['approval']}/approve/", {}, format="json").json()
    shown = f"user:alice via {ref}"
    assert approved["decided_by"] == shown
    assert client.get(f"{URL}{opened['approval']}/").json()["decided_by"] == shown
    assert client.get(URL).json()["results"][0]["decided_by"] == shown
    assert ApprovalRequest.objects.get(pk=opened["approval"]).decided_by == ref  # stored as the credential

    allowed = evaluate(instance, "email.send", params=PARAMS, approval=opened["approval"]).json()
    assert allowed["decision"] == "ALLOW" and allowed["decided_by"] == shown
    [reason] = allowed["reasons"]
    assert reason["code"] == "approval_granted" and reason["message"].startswith(f"Approved by {shown}:")


def test_a_person_deciding_in_a_session_is_named_alone(instance, evaluate, approver):
    opened = evaluate(instance, "email.send", params=PARAMS).json()
    session = APIClient()
    session.force_login(approver.user)
    approved = session.post(f"{URL}{opened['approval']}/approve/", {}, format="json").json()
    assert approved["decided_by"] == f"user:{approver.user.username}"
    allowed = evaluate(instance, "email.send", params=PARAMS, approval=opened["approval"]).json()
    assert allowed["decided_by"] == f"user:{approver.user.username}"


def test_other_answers_name_no_decider(instance, evaluate):
    assert evaluate(instance, "crm.lookup").json()["decided_by"] is None
    assert evaluate(instance, "email.send", params=PARAMS).json()["decided_by"] is None
