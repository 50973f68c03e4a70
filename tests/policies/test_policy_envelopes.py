"""Envelope rules: validation, revision bumped on every change, change records with before/after,
refusal to delete a policy still attached."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from arm.errors import Conflict, RoleRequired
from audit.choices import EventType
from policies.models import PolicyEnvelope
from policies.services import policy_create, policy_delete, policy_update
from tests.conftest import change_records
from tests.policies.factories import make_instance

VALID = {"name": "support", "autonomy_tier": 2, "allowed_tools": ["crm.*"], "data_scopes": ["crm:read"]}


def create(compliance, tenant, **overrides):
    return policy_create(tenant=tenant, actor=compliance.actor, **{**VALID, **overrides})


def test_create_writes_policy_created_with_the_values(tenant, compliance):
    policy = create(compliance, tenant)
    assert policy.revision == 1 and policy.created_by == compliance.actor.ref
    [record] = change_records(policy, EventType.POLICY_CREATED)
    assert record.payload["after"]["allowed_tools"] == ["crm.*"]
    assert record.actor == compliance.actor.ref


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"autonomy_tier": 6}, "autonomy_tier"),
        ({"autonomy_tier": -1}, "autonomy_tier"),
        ({"allowed_tools": [""]}, "allowed_tools"),
        ({"allowed_tools": ["   "]}, "allowed_tools"),
        ({"allowed_tools": ["crm .*"]}, "allowed_tools"),
        ({"allowed_tools": ["crm.[a-z"]}, "allowed_tools"),
        ({"allowed_tools": ["crm.]"]}, "allowed_tools"),
        ({"allowed_tools": ["[]"]}, "allowed_tools"),
        ({"allowed_tools": [5]}, "allowed_tools"),
        ({"allowed_tools": "crm.*"}, "allowed_tools"),
        ({"allowed_tools": ["a", "a"]}, "allowed_tools"),
        ({"denied_tools": ["x["]}, "denied_tools"),
        ({"data_scopes": [""]}, "data_scopes"),
        ({"cost_limit_daily_usd": Decimal("-1")}, "cost_limit_daily_usd"),
        ({"cost_limit_monthly_usd": Decimal("-0.01")}, "cost_limit_monthly_usd"),
        ({"cost_limit_daily_usd": Decimal("20"), "cost_limit_monthly_usd": Decimal("10")}, "cost_limit_daily_usd"),
        ({"tool_risk_overrides": {"email.send": "extreme"}}, "tool_risk_overrides"),
        ({"tool_risk_overrides": ["email.send"]}, "tool_risk_overrides"),
        ({"tool_risk_overrides": {"": "low"}}, "tool_risk_overrides"),
        ({"approval_timeout_seconds": 0}, "approval_timeout_seconds"),
        ({"name": "  "}, "name"),
    ],
)
def test_invalid_envelopes_are_refused_naming_the_field(tenant, compliance, overrides, field):
    with pytest.raises(ValidationError) as exc:
        create(compliance, tenant, **overrides)
    assert field in exc.value.message_dict
    assert PolicyEnvelope.objects.count() == 0


@pytest.mark.parametrize("pattern", ["*", "crm.*", "crm.[a-z]*", "tickets:?ead", "email.[!s]*", "a[]]b"])
def test_well_formed_globs_are_accepted(tenant, compliance, pattern):
    assert create(compliance, tenant, allowed_tools=[pattern]).allowed_tools == [pattern]


def test_daily_equal_to_monthly_and_empty_lists_are_fine(tenant, compliance):
    policy = create(
        compliance, tenant, cost_limit_daily_usd=Decimal("5"), cost_limit_monthly_usd=Decimal("5"), allowed_tools=[]
    )
    assert policy.allowed_tools == []


def test_names_are_unique_per_tenant(tenant, other_tenant, compliance, outsider):
    create(compliance, tenant)
    with pytest.raises(ValidationError) as exc:
        create(compliance, tenant)
    assert "name" in exc.value.message_dict
    assert policy_create(tenant=other_tenant, actor=outsider.actor, **VALID).name == "support"


def test_every_change_bumps_the_revision_and_records_before_and_after(tenant, compliance):
    policy = create(compliance, tenant)
    policy = policy_update(policy=policy, actor=compliance.actor, autonomy_tier=3)
    policy = policy_update(policy=policy, actor=compliance.actor, denied_tools=["crm.delete"])
    assert policy.revision == 3
    first, second = change_records(policy, EventType.POLICY_CHANGED)
    assert first.payload["changes"] == {
        "autonomy_tier": {"before": 2, "after": 3},
        "revision": {"before": 1, "after": 2},
    }
    assert second.payload["changes"] == {
        "denied_tools": {"before": [], "after": ["crm.delete"]},
        "revision": {"before": 2, "after": 3},
    }


def test_an_update_that_changes_nothing_keeps_the_revision_and_writes_nothing(tenant, compliance):
    policy = create(compliance, tenant)
    policy = policy_update(policy=policy, actor=compliance.actor, autonomy_tier=2)
    assert policy.revision == 1
    assert change_records(policy, EventType.POLICY_CHANGED) == []


def test_an_invalid_update_changes_nothing(tenant, compliance):
    policy = create(compliance, tenant)
    with pytest.raises(ValidationError):
        policy_update(policy=policy, actor=compliance.actor, autonomy_tier=9)
    policy.refresh_from_db()
    assert (policy.autonomy_tier, policy.revision) == (2, 1)


def test_delete_records_the_last_values(tenant, compliance):
    policy = create(compliance, tenant)
    policy_delete(policy=policy, actor=compliance.actor)
    assert not PolicyEnvelope.objects.filter(pk=policy.pk).exists()
    [record] = change_records(policy, EventType.POLICY_DELETED)
    assert record.payload["before"]["name"] == "support"


def test_a_policy_still_attached_cannot_be_deleted(tenant, compliance):
    policy = create(compliance, tenant)
    make_instance(tenant, policy=policy)
    with pytest.raises(Conflict) as exc:
        policy_delete(policy=policy, actor=compliance.actor)
    assert exc.value.code == "policy_attached" and exc.value.status == 409
    assert PolicyEnvelope.objects.filter(pk=policy.pk).exists()
    assert change_records(policy, EventType.POLICY_DELETED) == []


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_only_compliance_or_admin_write_policies(cast, tenant, role):
    with pytest.raises(RoleRequired):
        create(cast[role], tenant)


def test_admin_may_write_policies(admin_member, tenant):
    assert create(admin_member, tenant).pk


@pytest.mark.parametrize("write", ["create", "update"])
def test_a_field_the_service_does_not_write_is_refused_by_name(tenant, compliance, write):
    policy = create(compliance, tenant)
    call = {
        "create": lambda: create(compliance, tenant, name="other", revision=7),
        "update": lambda: policy_update(policy=policy, actor=compliance.actor, revision=7),
    }[write]
    with pytest.raises(ValidationError) as caught:
        call()
    assert caught.value.message_dict == {"revision": ["Unknown or read-only field."]}
    policy.refresh_from_db()
    assert policy.revision == 1 and PolicyEnvelope.objects.filter(tenant=tenant).count() == 1
