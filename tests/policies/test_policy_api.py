"""/api/v1/policies/: CRUD through the services, roles, tenant isolation, 400s with codes, constant
query count."""

import pytest

from audit.choices import EventType
from policies.models import PolicyEnvelope
from tests.conftest import assert_constant_queries, change_records
from tests.helpers import assert_error, assert_isolated
from tests.policies.factories import PolicyFactory, make_instance

URL = "/api/v1/policies/"
BODY = {
    "name": "support-bot",
    "description": "Tier 2 for the support agents",
    "autonomy_tier": 2,
    "allowed_tools": ["crm.*", "email.send"],
    "denied_tools": ["crm.delete"],
    "data_scopes": ["crm:read"],
    "cost_limit_daily_usd": "10.00",
    "cost_limit_monthly_usd": "200.00",
    "approval_timeout_seconds": 900,
    "tool_risk_overrides": {"email.send": "critical"},
}


def test_compliance_creates_a_policy_with_every_field(compliance):
    response = compliance.client.post(URL, BODY, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert {k: data[k] for k in BODY} == BODY
    assert data["revision"] == 1 and data["created_by"] == compliance.actor.ref
    policy = PolicyEnvelope.objects.get(pk=data["id"])
    assert change_records(policy, EventType.POLICY_CREATED)


def test_defaults_apply_to_omitted_fields(compliance):
    data = compliance.client.post(URL, {"name": "minimal", "autonomy_tier": 0}, format="json").json()
    assert data["allowed_tools"] == [] and data["cost_limit_daily_usd"] is None
    assert data["approval_timeout_seconds"] == 3600 and data["tool_risk_overrides"] == {}


def test_patch_changes_fields_and_bumps_the_revision(compliance, tenant):
    policy = PolicyFactory(tenant=tenant)
    response = compliance.client.patch(f"{URL}{policy.pk}/", {"autonomy_tier": 4}, format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["autonomy_tier"], response.json()["revision"]) == (4, 2)
    [record] = change_records(policy, EventType.POLICY_CHANGED)
    assert record.payload["changes"] == {
        "autonomy_tier": {"before": 3, "after": 4},
        "revision": {"before": 1, "after": 2},
    }


def test_put_is_not_offered(compliance, tenant):
    policy = PolicyFactory(tenant=tenant)
    assert_error(compliance.client.put(f"{URL}{policy.pk}/", BODY, format="json"), 405, "method_not_allowed")


def test_delete_answers_204_or_409_while_attached(compliance, tenant):
    free, used = PolicyFactory(tenant=tenant), PolicyFactory(tenant=tenant)
    make_instance(tenant, policy=used)
    assert compliance.client.delete(f"{URL}{free.pk}/").status_code == 204
    assert_error(compliance.client.delete(f"{URL}{used.pk}/"), 409, "policy_attached")
    assert PolicyEnvelope.objects.filter(pk=used.pk).exists()


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "compliance", "admin"])
def test_every_member_reads_policies(cast, tenant, role):
    policy = PolicyFactory(tenant=tenant)
    assert cast[role].client.get(URL).json()["count"] == 1
    assert cast[role].client.get(f"{URL}{policy.pk}/").json()["id"] == str(policy.pk)


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_non_compliance_members_cannot_write_policies(cast, tenant, role):
    policy = PolicyFactory(tenant=tenant)
    client = cast[role].client
    assert_error(client.post(URL, BODY, format="json"), 403, "role_required")
    assert_error(client.patch(f"{URL}{policy.pk}/", {"autonomy_tier": 5}, format="json"), 403, "role_required")
    assert_error(client.delete(f"{URL}{policy.pk}/"), 403, "role_required")
    assert_error(client.post(f"{URL}{policy.pk}/simulate/", {}, format="json"), 403, "role_required")


def test_admin_writes_policies(admin_member):
    assert admin_member.client.post(URL, BODY, format="json").status_code == 201


def test_runtime_key_cannot_read_policies(runtime_key, tenant):
    policy = PolicyFactory(tenant=tenant)
    assert_error(runtime_key[1].get(URL), 403, "role_required")
    assert_error(runtime_key[1].get(f"{URL}{policy.pk}/"), 403, "role_required")


def test_unauthenticated_gets_401(anon):
    assert anon.get(URL).status_code == 401


def test_another_tenants_policy_answers_404_everywhere(outsider, compliance, tenant):
    policy = PolicyFactory(tenant=tenant)
    assert outsider.client.get(URL).json()["count"] == 0
    assert_isolated(outsider.client, f"{URL}{policy.pk}/", write_methods=("patch", "delete"))
    response = outsider.client.post(f"{URL}{policy.pk}/simulate/", {}, format="json")
    assert_error(response, 404, "not_found")
    policy.refresh_from_db()
    assert policy.revision == 1


def test_non_uuid_id_answers_404(compliance):
    assert_error(compliance.client.get(f"{URL}not-a-uuid/"), 404, "not_found")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"autonomy_tier": 6}, "autonomy_tier"),
        ({"autonomy_tier": "high"}, "autonomy_tier"),
        ({"allowed_tools": "crm.*"}, "allowed_tools"),
        ({"allowed_tools": [1]}, "allowed_tools"),
        ({"allowed_tools": ["crm.["]}, "allowed_tools"),
        ({"allowed_tools": [""]}, "allowed_tools"),
        ({"data_scopes": ["crm read"]}, "data_scopes"),
        ({"cost_limit_daily_usd": "-1"}, "cost_limit_daily_usd"),
        ({"cost_limit_daily_usd": "abc"}, "cost_limit_daily_usd"),
        ({"cost_limit_daily_usd": "300.00"}, "cost_limit_daily_usd"),
        ({"tool_risk_overrides": {"email.send": "extreme"}}, "tool_risk_overrides"),
        ({"tool_risk_overrides": []}, "tool_risk_overrides"),
        ({"approval_timeout_seconds": 0}, "approval_timeout_seconds"),
        ({"name": ""}, "name"),
        ({"name": 12}, "name"),
        ({"revision": 9}, "revision"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_bodies_answer_400_naming_the_field(compliance, tenant, patch, field):
    response = compliance.client.post(URL, {**BODY, **patch}, format="json")
    assert field in assert_error(response, 400, "validation_error")["errors"]
    policy = PolicyFactory(tenant=tenant, cost_limit_monthly_usd="200.00")
    response = compliance.client.patch(f"{URL}{policy.pk}/", patch, format="json")
    assert field in assert_error(response, 400, "validation_error")["errors"]
    policy.refresh_from_db()
    assert policy.revision == 1


def test_duplicate_name_answers_409_on_name(compliance, tenant):
    PolicyFactory(tenant=tenant, name="support-bot")
    response = compliance.client.post(URL, BODY, format="json")
    assert "name" in assert_error(response, 409, "conflict")["errors"]


def test_malformed_json_answers_400(compliance):
    response = compliance.client.post(URL, data=b'{"name": ', content_type="application/json")
    assert_error(response, 400, "parse_error")


def test_list_filters_and_search(viewer, tenant):
    PolicyFactory(tenant=tenant, name="alpha", autonomy_tier=1)
    PolicyFactory(tenant=tenant, name="beta", autonomy_tier=4)
    assert [p["name"] for p in viewer.client.get(URL, {"autonomy_tier": 4}).json()["results"]] == ["beta"]
    assert [p["name"] for p in viewer.client.get(URL, {"search": "alp"}).json()["results"]] == ["alpha"]
    names = [p["name"] for p in viewer.client.get(URL, {"ordering": "-autonomy_tier"}).json()["results"]]
    assert names == ["beta", "alpha"]


def test_list_runs_a_constant_number_of_queries(viewer, tenant):
    def make(n):
        for _ in range(n):
            PolicyFactory(tenant=tenant)

    assert_constant_queries(make, lambda: viewer.client.get(URL, {"page_size": 1000}))
