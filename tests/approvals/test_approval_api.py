"""Approval list and detail: filters, runtime keys see only their own, tenant isolation, roles,
constant query count."""

import pytest

from tests.approvals.conftest import URL
from tests.conftest import _client, assert_constant_queries
from tests.factories import make_api_key
from tests.helpers import assert_error, assert_isolated
from tests.policies.factories import make_approval, make_instance


def listed(client, **params):
    response = client.get(URL, params)
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_detail_has_the_spec_fields(viewer, pending, instance):
    data = viewer.client.get(f"{URL}{pending.pk}/").json()
    for field in (
        "id",
        "instance",
        "tool",
        "params",
        "risk",
        "reasons",
        "status",
        "requested_at",
        "expires_at",
        "decided_at",
        "decided_by",
        "note",
        "used_at",
    ):
        assert field in data
    assert data["instance"] == str(instance.pk) and data["params"] == {"to": "x@example.com"}
    assert data["risk"] == "high" and data["reasons"][0]["code"] == "needs_approval"


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "compliance", "admin"])
def test_every_member_lists_approvals(cast, pending, role):
    assert listed(cast[role].client) == [str(pending.pk)]


def test_filters(viewer, tenant, policy, instance):
    other = make_instance(tenant, policy=policy)
    a = make_approval(instance, tool="email.send", risk="high")
    b = make_approval(other, tool="payments.refund", risk="critical", status="APPROVED")
    assert listed(viewer.client, status="PENDING") == [str(a.pk)]
    assert listed(viewer.client, status="APPROVED") == [str(b.pk)]
    assert listed(viewer.client, instance=str(other.pk)) == [str(b.pk)]
    assert listed(viewer.client, tool="email.send") == [str(a.pk)]
    assert listed(viewer.client, risk="critical") == [str(b.pk)]
    assert_error(viewer.client.get(URL, {"status": "MAYBE"}), 400, "validation_error")
    assert_error(viewer.client.get(URL, {"instance": "x"}), 400, "validation_error")


def test_unbound_runtime_key_sees_only_the_requests_it_opened(runtime_key, pending, instance):
    someone_elses = make_approval(instance, params={"n": 1})
    assert listed(runtime_key[1]) == [str(pending.pk)]
    assert runtime_key[1].get(f"{URL}{pending.pk}/").json()["status"] == "PENDING"
    assert_error(runtime_key[1].get(f"{URL}{someone_elses.pk}/"), 404, "not_found")


def test_bound_runtime_key_sees_its_instances_requests(tenant, policy, instance, pending):
    from rest_framework.test import APIClient

    other = make_instance(tenant, policy=policy)
    foreign = make_approval(other)
    _, secret = make_api_key(tenant, ["runtime"], instance=instance)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert listed(client) == [str(pending.pk)]
    assert_error(client.get(f"{URL}{foreign.pk}/"), 404, "not_found")


def test_another_tenants_approvals_answer_404(outsider, pending):
    assert listed(outsider.client) == []
    assert_isolated(outsider.client, f"{URL}{pending.pk}/", write_methods=("patch", "delete"))
    for verb in ("approve", "deny"):
        assert_error(outsider.client.post(f"{URL}{pending.pk}/{verb}/", {}, format="json"), 404, "not_found")
    pending.refresh_from_db()
    assert pending.status == "PENDING"


def test_approvals_cannot_be_created_edited_or_deleted(admin_member, pending):
    assert admin_member.client.post(URL, {}, format="json").status_code == 405
    assert admin_member.client.patch(f"{URL}{pending.pk}/", {"status": "APPROVED"}, format="json").status_code == 405
    assert admin_member.client.delete(f"{URL}{pending.pk}/").status_code == 405


def test_unauthenticated_gets_401(anon):
    assert anon.get(URL).status_code == 401


def test_list_runs_a_constant_number_of_queries(viewer, instance):
    counter = {"n": 0}

    def make(n):
        for _ in range(n):
            counter["n"] += 1
            make_approval(instance, params={"n": counter["n"]})

    assert_constant_queries(make, lambda: viewer.client.get(URL, {"page_size": 1000}))


def test_the_list_filters_by_idempotency_key(viewer, tenant, instance, evaluate):
    """Defect: ``?idempotency_key=`` was silently ignored (every request listed)."""
    _, secret = make_api_key(tenant, ["runtime"], instance=instance)
    runtime = _client(secret)
    mine = evaluate(instance, "email.send", params={"n": 1}, idempotency_key="call-1", client=runtime).json()
    evaluate(instance, "email.send", params={"n": 2}, idempotency_key="call-2", client=runtime)
    evaluate(instance, "email.send", params={"n": 3})
    assert listed(viewer.client, idempotency_key="call-1") == [mine["approval"]]
    assert listed(runtime, idempotency_key="call-1") == [mine["approval"]]
    assert listed(viewer.client, idempotency_key="nobody") == []
