"""GET /api/v1/decisions/: every evaluation, newest first with cursor pagination, filters, isolation,
roles, constant queries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from policies.models import PolicyDecision
from tests.conftest import assert_constant_queries
from tests.helpers import assert_error, assert_isolated
from tests.policies.factories import PolicyFactory, make_instance

URL = "/api/v1/decisions/"


def results(client, **params):
    response = client.get(URL, params)
    assert response.status_code == 200, response.json()
    return response.json()["results"]


@pytest.fixture
def history(instance, evaluate):
    evaluate(instance, "crm.lookup")  # ALLOW low
    evaluate(instance, "email.send")  # NEEDS_APPROVAL high
    evaluate(instance, "shell.exec")  # DENY
    return instance


def test_lists_every_decision_newest_first_with_cursor_links(viewer, history):
    data = viewer.client.get(URL, {"page_size": 2}).json()
    assert set(data) >= {"next", "previous", "results"}
    assert [d["tool"] for d in data["results"]] == ["shell.exec", "email.send"]
    assert "cursor=" in data["next"]
    rest = viewer.client.get(data["next"]).json()
    assert [d["tool"] for d in rest["results"]] == ["crm.lookup"]


def test_detail_has_the_logged_fields(viewer, history):
    row = PolicyDecision.objects.get(tool="email.send")
    data = viewer.client.get(f"{URL}{row.pk}/").json()
    assert data["decision"] == "NEEDS_APPROVAL" and data["risk"] == "high"
    assert data["policy"] == {"id": str(history.policy_attachment.policy_id), "revision": 1}
    assert data["approval"] == str(row.approval_id) and data["instance"] == str(history.pk)
    assert data["reasons"][0]["code"] == "needs_approval"
    assert data["params_hash"] == row.params_hash and data["duration_us"] >= 0


@pytest.mark.parametrize(
    ("params", "tools"),
    [
        ({"decision": "ALLOW"}, ["crm.lookup"]),
        ({"decision": ["DENY", "NEEDS_APPROVAL"]}, ["shell.exec", "email.send"]),
        ({"risk": "high"}, ["email.send"]),
        ({"tool": "crm.lookup"}, ["crm.lookup"]),
        ({"search": "mail"}, ["email.send"]),
    ],
)
def test_filters(viewer, history, params, tools):
    assert [d["tool"] for d in results(viewer.client, **params)] == tools


def test_instance_and_time_filters(viewer, history, tenant, policy, evaluate):
    other = make_instance(tenant, policy=policy)
    evaluate(other, "crm.lookup")
    assert {d["instance"] for d in results(viewer.client, instance=str(other.pk))} == {str(other.pk)}
    old = PolicyDecision.objects.get(tool="shell.exec")
    PolicyDecision.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert "shell.exec" not in [d["tool"] for d in results(viewer.client, since=since)]
    assert [d["tool"] for d in results(viewer.client, until=since)] == ["shell.exec"]


def test_bad_filter_values_answer_400(viewer):
    assert_error(viewer.client.get(URL, {"instance": "nope"}), 400, "validation_error")
    assert_error(viewer.client.get(URL, {"decision": "MAYBE"}), 400, "validation_error")
    assert_error(viewer.client.get(URL, {"since": "yesterday"}), 400, "validation_error")


def test_another_tenants_decisions_are_invisible(outsider, history):
    assert results(outsider.client) == []
    row = PolicyDecision.objects.first()
    assert_isolated(outsider.client, f"{URL}{row.pk}/", write_methods=("post", "patch", "delete"))


def test_runtime_key_cannot_read_the_log(runtime_key, history):
    assert_error(runtime_key[1].get(URL), 403, "role_required")


def test_log_is_read_only(admin_member, history):
    row = PolicyDecision.objects.first()
    assert admin_member.client.delete(f"{URL}{row.pk}/").status_code == 405
    assert admin_member.client.post(URL, {}, format="json").status_code == 405


def test_list_runs_a_constant_number_of_queries(viewer, tenant, instance):
    policy = PolicyFactory(tenant=tenant)

    def make(n):
        PolicyDecision.objects.bulk_create(
            PolicyDecision(
                tenant=tenant,
                instance=instance,
                policy_id=policy.pk,
                policy_revision=1,
                tool="crm.lookup",
                params_hash="0" * 64,
                decision="ALLOW",
                risk="low",
                reasons=[],
                actor="x",
            )
            for _ in range(n)
        )

    assert_constant_queries(make, lambda: viewer.client.get(URL, {"page_size": 1000}))
