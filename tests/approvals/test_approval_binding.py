"""An approval binds the whole call (SPEC §11): instance, tool, canonical params, the estimate at most and
the data scopes at most. The approver sees all of them (API, approval card, history), and a grant applies
only to a call within them."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from policies.models import InstanceSpend
from tests.approvals.conftest import URL

PARAMS = {"to": "cfo@example.com"}
SCOPES = ["crm:read", "tickets:read"]


@pytest.fixture
def opened(instance, evaluate):
    """A request opened by an evaluation at 0.01 with two scopes."""
    data = evaluate(instance, "email.send", params=PARAMS, data_scopes=SCOPES, estimated_cost_usd="0.01").json()
    return ApprovalRequest.objects.get(pk=data["approval"])


@pytest.fixture
def approved(opened, approver):
    return approval_decide(approval=opened, approve=True, actor=approver.actor)


def use(evaluate, instance, approval, **call):
    body = {"params": PARAMS, "data_scopes": SCOPES, "estimated_cost_usd": "0.01", **call}
    return evaluate(instance, "email.send", approval=str(approval.pk), **body).json()


def test_the_request_stores_the_estimate_and_the_scopes(opened):
    assert opened.estimated_cost_usd == Decimal("0.01") and opened.data_scopes == SCOPES


def test_a_grant_is_refused_for_a_larger_estimate_and_other_scopes(instance, evaluate, approved):
    """Defect: approved after an evaluation at 0.01, used at 40.00 with other scopes: ALLOW."""
    bigger = use(evaluate, instance, approved, estimated_cost_usd="40.00", data_scopes=["crm:write"])
    assert bigger["decision"] == "NEEDS_APPROVAL"
    assert "0.01" in bigger["reasons"][1]["message"] and bigger["reasons"][1]["code"] == "approval_invalid"
    wider = use(evaluate, instance, approved, data_scopes=[*SCOPES, "crm:write"])
    assert wider["decision"] == "NEEDS_APPROVAL" and "crm:write" in wider["reasons"][1]["message"]
    approved.refresh_from_db()
    assert approved.used_at is None  # still good for the call it grants
    assert not InstanceSpend.objects.filter(instance=instance, amount_usd__gt=0).exists()


def test_a_grant_applies_to_a_lower_estimate_and_narrower_scopes(instance, evaluate, approved):
    data = use(evaluate, instance, approved, estimated_cost_usd="0.005", data_scopes=["tickets:read"])
    assert data["decision"] == "ALLOW" and data["reasons"][0]["code"] == "approval_granted"


def test_the_same_call_is_granted(instance, evaluate, approved):
    assert use(evaluate, instance, approved)["decision"] == "ALLOW"


def test_an_approval_opened_without_an_estimate_grants_only_calls_without_one(instance, evaluate, approver):
    data = evaluate(instance, "email.send", params=PARAMS).json()
    approval = approval_decide(
        approval=ApprovalRequest.objects.get(pk=data["approval"]), approve=True, actor=approver.actor
    )
    priced = use(evaluate, instance, approval, data_scopes=[], estimated_cost_usd="0.01")
    assert priced["decision"] == "NEEDS_APPROVAL" and "no estimate" in priced["reasons"][1]["message"]
    assert use(evaluate, instance, approval, data_scopes=[], estimated_cost_usd="0")["decision"] == "ALLOW"


def test_the_api_shows_what_is_granted(viewer, opened):
    data = viewer.client.get(f"{URL}{opened.pk}/").json()
    assert data["estimated_cost_usd"] == "0.0100" and data["data_scopes"] == SCOPES
    assert data["withdrawn_at"] is None and data["idempotency_key"] == ""


def _page(member, **query) -> str:
    client = Client()
    client.force_login(member.user)
    return client.get(reverse("ui:approvals"), query).content.decode()


def test_the_approval_card_shows_the_estimate_and_the_scopes(approver, opened):
    card = _page(approver).split('data-testid="approval-card"', 1)[1]
    grants = card.split('data-testid="approval-grants"', 1)[1].split("</dl>", 1)[0]
    assert "$0.01" in grants and "crm:read" in grants and "tickets:read" in grants


def test_the_history_shows_what_was_granted(approver, approved):
    row = _page(approver, tab="history").split('data-testid="history-grants"', 1)[1].split("</td>", 1)[0]
    assert "$0.01" in row and "crm:read, tickets:read" in row
