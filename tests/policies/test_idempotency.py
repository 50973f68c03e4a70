"""One idempotency_key (per instance) names one tool call for its whole life (SPEC §11): a replayed ALLOW or
DENY returns the original decision and counts nothing again; a replayed NEEDS_APPROVAL returns the same
approval whatever its state; once approved, the same key is allowed through it exactly once and then
replays that ALLOW; a different call under the key is a conflict. Without a key, identical pending calls
share one request as before. (PostgreSQL races: test_idempotency_postgres.py.)"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from audit.recording import recorded_update
from policies.models import IdempotentCall, InstanceSpend, PolicyDecision
from registry.choices import InstanceState
from tests.conftest import _client
from tests.factories import make_api_key
from tests.helpers import assert_error
from tests.policies.factories import make_instance

MAIL = {"to": "cfo@example.com", "subject": "Q3"}


def codes(data):
    return [r["code"] for r in data["reasons"]]


def spend(instance) -> Decimal:
    row = InstanceSpend.objects.filter(instance=instance, period="day").first()
    return row.amount_usd if row is not None else Decimal(0)


def test_a_retried_allow_is_replayed_and_counts_nothing_again(instance, evaluate):
    """Defect: a retried ALLOW with estimate 1.00 made two decisions and spend 2.00."""
    first = evaluate(instance, "crm.lookup", params={"c": 1}, estimated_cost_usd="1.00", idempotency_key="k-1").json()
    again = evaluate(instance, "crm.lookup", params={"c": 1}, estimated_cost_usd="1.00", idempotency_key="k-1").json()
    assert first["decision"] == again["decision"] == "ALLOW"
    assert (first["replay"], again["replay"]) == (False, True)
    assert again["decision_id"] == first["decision_id"] and again["reasons"] == first["reasons"]
    assert again["policy"] == first["policy"]
    assert PolicyDecision.objects.filter(instance=instance).count() == 1
    assert spend(instance) == Decimal("1.00")
    assert InstanceSpend.objects.get(instance=instance, period="day").allowed_calls == 1


def test_a_retried_deny_is_replayed(instance, evaluate):
    first = evaluate(instance, "shell.exec", idempotency_key="k-deny").json()
    again = evaluate(instance, "shell.exec", idempotency_key="k-deny").json()
    assert first["decision"] == again["decision"] == "DENY"
    assert again["replay"] and again["decision_id"] == first["decision_id"]
    assert PolicyDecision.objects.filter(instance=instance).count() == 1


def test_a_replay_answers_the_stored_decision_even_when_the_policy_changed_since(instance, policy, evaluate):
    first = evaluate(instance, "crm.lookup", idempotency_key="k-2").json()
    policy.denied_tools = ["crm.*"]
    policy.save()
    again = evaluate(instance, "crm.lookup", idempotency_key="k-2").json()
    assert (again["decision"], again["decision_id"], again["replay"]) == ("ALLOW", first["decision_id"], True)
    assert evaluate(instance, "crm.lookup", idempotency_key="k-3").json()["decision"] == "DENY"  # a new call


def test_a_pending_call_replays_its_approval(instance, evaluate):
    first = evaluate(instance, "email.send", params=MAIL, idempotency_key="mail-1").json()
    again = evaluate(instance, "email.send", params=MAIL, idempotency_key="mail-1").json()
    assert first["decision"] == again["decision"] == "NEEDS_APPROVAL"
    assert again["approval"] == first["approval"] and again["decision_id"] == first["decision_id"]
    assert again["replay"] is True
    assert ApprovalRequest.objects.count() == 1 and PolicyDecision.objects.count() == 1


def test_once_approved_the_same_key_is_allowed_through_it_once_then_replays(instance, evaluate, approver):
    """Defect: after APPROVED, asking again with the same key opened a second request."""
    body = {"params": MAIL, "estimated_cost_usd": "0.50", "idempotency_key": "mail-2"}
    opened = evaluate(instance, "email.send", **body).json()
    approval = ApprovalRequest.objects.get(pk=opened["approval"])
    approval_decide(approval=approval, approve=True, actor=approver.actor)

    allowed = evaluate(instance, "email.send", **body).json()  # a resumed runtime: same key, no approval id
    assert (allowed["decision"], allowed["approval"], allowed["replay"]) == ("ALLOW", str(approval.pk), False)
    assert codes(allowed) == ["approval_granted"] and allowed["decided_by"] == approver.actor.ref
    assert allowed["decision_id"] != opened["decision_id"]
    again = evaluate(instance, "email.send", **body).json()
    assert (again["decision"], again["decision_id"], again["replay"]) == ("ALLOW", allowed["decision_id"], True)
    assert again["decided_by"] == approver.actor.ref

    assert ApprovalRequest.objects.count() == 1
    approval.refresh_from_db()
    assert approval.used_at is not None
    assert sorted(PolicyDecision.objects.values_list("decision", flat=True)) == ["ALLOW", "NEEDS_APPROVAL"]
    assert spend(instance) == Decimal("0.50")
    assert IdempotentCall.objects.get(key="mail-2").decision_id == PolicyDecision.objects.get(decision="ALLOW").pk


def test_the_key_with_the_approval_id_is_the_same_call(instance, evaluate, approver):
    body = {"params": MAIL, "idempotency_key": "mail-3"}
    opened = evaluate(instance, "email.send", **body).json()
    approval_decide(approval=ApprovalRequest.objects.get(pk=opened["approval"]), approve=True, actor=approver.actor)
    allowed = evaluate(instance, "email.send", approval=opened["approval"], **body).json()
    again = evaluate(instance, "email.send", approval=opened["approval"], **body).json()
    assert (allowed["decision"], allowed["replay"], again["replay"]) == ("ALLOW", False, True)
    assert again["decision_id"] == allowed["decision_id"]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (ApprovalStatus.DENIED, "approval_denied"),
        (ApprovalStatus.EXPIRED, "approval_expired"),
        (ApprovalStatus.WITHDRAWN, "approval_withdrawn"),
    ],
)
def test_a_refused_expired_or_withdrawn_approval_answers_deny_naming_it(instance, evaluate, status, code):
    opened = evaluate(instance, "email.send", params=MAIL, idempotency_key="mail-4").json()
    recorded_update(
        ApprovalRequest.objects.filter(pk=opened["approval"]), status=status, decided_by="user:someone", note="no"
    )
    denied = evaluate(instance, "email.send", params=MAIL, idempotency_key="mail-4").json()
    assert (denied["decision"], denied["approval"], denied["replay"]) == ("DENY", opened["approval"], True)
    assert codes(denied) == [code] and opened["approval"] in denied["reasons"][0]["message"]
    again = evaluate(instance, "email.send", params=MAIL, idempotency_key="mail-4").json()
    assert again["decision_id"] == denied["decision_id"] and again["replay"]
    assert ApprovalRequest.objects.count() == 1  # never a second request for the key
    assert PolicyDecision.objects.filter(decision="DENY").count() == 1


def test_an_approval_that_expires_while_pending_is_expired_and_answers_deny(instance, evaluate):
    opened = evaluate(instance, "email.send", params=MAIL, idempotency_key="mail-5").json()
    recorded_update(
        ApprovalRequest.objects.filter(pk=opened["approval"]), expires_at=timezone.now() - timedelta(seconds=1)
    )
    denied = evaluate(instance, "email.send", params=MAIL, idempotency_key="mail-5").json()
    assert denied["decision"] == "DENY" and codes(denied) == ["approval_expired"]
    assert ApprovalRequest.objects.get(pk=opened["approval"]).status == ApprovalStatus.EXPIRED


def test_an_approved_call_still_passes_the_hard_checks_and_keeps_its_approval(instance, evaluate, approver):
    opened = evaluate(instance, "email.send", params=MAIL, idempotency_key="mail-6").json()
    approval = ApprovalRequest.objects.get(pk=opened["approval"])
    approval_decide(approval=approval, approve=True, actor=approver.actor)
    recorded_update(type(instance).objects.filter(pk=instance.pk), state=InstanceState.PAUSED)
    paused = evaluate(instance, "email.send", params=MAIL, idempotency_key="mail-6").json()
    assert paused["decision"] == "DENY" and codes(paused)[0] == "instance_state" and not paused["replay"]
    recorded_update(type(instance).objects.filter(pk=instance.pk), state=InstanceState.ACTIVE)
    allowed = evaluate(instance, "email.send", params=MAIL, idempotency_key="mail-6").json()
    assert allowed["decision"] == "ALLOW" and codes(allowed) == ["approval_granted"]


def test_an_approval_used_without_the_key_is_what_the_key_replays(instance, evaluate, approver):
    opened = evaluate(instance, "email.send", params=MAIL, idempotency_key="mail-7").json()
    approval_decide(approval=ApprovalRequest.objects.get(pk=opened["approval"]), approve=True, actor=approver.actor)
    used = evaluate(instance, "email.send", params=MAIL, approval=opened["approval"]).json()
    assert used["decision"] == "ALLOW"
    keyed = evaluate(instance, "email.send", params=MAIL, idempotency_key="mail-7").json()
    assert (keyed["decision"], keyed["decision_id"], keyed["replay"]) == ("ALLOW", used["decision_id"], True)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"tool": "crm.update"}, "tool"),
        ({"params": {"c": 2}}, "params"),
        ({"data_scopes": ["crm:write"]}, "data_scopes"),
        ({"estimated_cost_usd": "0.02"}, "estimated_cost_usd"),
    ],
)
def test_the_same_key_for_another_call_is_a_conflict(instance, evaluate, change, named):
    call = {"tool": "crm.lookup", "params": {"c": 1}, "data_scopes": ["crm:read"], "estimated_cost_usd": "0.01"}
    evaluate(instance, idempotency_key="k-9", **call)
    conflict = evaluate(instance, idempotency_key="k-9", **{**call, **change})
    assert_error(conflict, 409, "idempotency_conflict", contains=["k-9", named])
    assert PolicyDecision.objects.count() == 1


def test_scopes_compare_as_a_set_and_estimates_as_numbers(instance, evaluate):
    call = {"tool": "crm.lookup", "data_scopes": ["crm:read", "tickets:read"], "estimated_cost_usd": "0.6"}
    first = evaluate(instance, idempotency_key="k-10", **call).json()
    again = evaluate(
        instance,
        idempotency_key="k-10",
        **{**call, "data_scopes": ["tickets:read", "crm:read", "crm:read"], "estimated_cost_usd": "0.60"},
    ).json()
    assert again["replay"] and again["decision_id"] == first["decision_id"]


def test_keys_are_per_instance(tenant, policy, instance, evaluate):
    other = make_instance(tenant, policy=policy)
    a = evaluate(instance, "crm.lookup", idempotency_key="shared").json()
    b = evaluate(other, "crm.update", idempotency_key="shared").json()
    assert not a["replay"] and not b["replay"] and a["decision_id"] != b["decision_id"]


def test_parallel_identical_calls_with_their_own_keys_get_their_own_approvals(instance, evaluate, approver):
    """Defect: two identical calls with their own keys shared one approval; the second was refused with
    approval_invalid 'already used'."""
    a = evaluate(instance, "email.send", params=MAIL, idempotency_key="par-a").json()
    b = evaluate(instance, "email.send", params=MAIL, idempotency_key="par-b").json()
    assert a["approval"] != b["approval"]
    for opened in (a, b):
        approval_decide(approval=ApprovalRequest.objects.get(pk=opened["approval"]), approve=True, actor=approver.actor)
    for key in ("par-a", "par-b"):
        data = evaluate(instance, "email.send", params=MAIL, idempotency_key=key).json()
        assert data["decision"] == "ALLOW" and codes(data) == ["approval_granted"], data


def test_without_a_key_identical_pending_calls_still_share_one_request(instance, evaluate):
    a = evaluate(instance, "email.send", params=MAIL).json()
    b = evaluate(instance, "email.send", params=MAIL).json()
    assert a["approval"] == b["approval"] and not b["replay"] and a["decision_id"] != b["decision_id"]
    keyed = evaluate(instance, "email.send", params=MAIL, idempotency_key="own").json()
    assert keyed["approval"] != a["approval"]  # a keyed call is its own call


def test_a_withdrawn_request_answers_the_key_deny_and_opens_nothing(tenant, instance, evaluate):
    _, secret = make_api_key(tenant, ["runtime"], instance=instance)
    runtime = _client(secret)
    opened = evaluate(instance, "email.send", params=MAIL, idempotency_key="w-1", client=runtime).json()
    withdrawn = runtime.post(f"/api/v1/approvals/{opened['approval']}/withdraw/", {}, format="json")
    assert withdrawn.status_code == 200, withdrawn.json()
    denied = evaluate(instance, "email.send", params=MAIL, idempotency_key="w-1", client=runtime).json()
    assert denied["decision"] == "DENY" and codes(denied) == ["approval_withdrawn"]
    assert ApprovalRequest.objects.count() == 1
