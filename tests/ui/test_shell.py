"""Tenant switcher, toasts and the other pages (policies, cost, incidents, audit)."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.choices import EventType
from policies.choices import Decision, SpendPeriod
from policies.models import InstanceSpend, PolicyDecision
from registry.choices import InstanceState
from tenancy.resolution import SESSION_TENANT_KEY
from tests.factories import MembershipFactory
from tests.helpers import policy_id_of, records

pytestmark = pytest.mark.django_db


def test_switcher_lists_only_own_tenants_and_switching_changes_the_data(login, operator, world, other_world):
    client = login(operator)
    html = client.get(reverse("ui:directory_tab", args=["templates"])).content.decode()
    assert 'id="tenant-switch"' not in html  # one membership: no switcher
    MembershipFactory(tenant=other_world.tenant, user=operator.user, roles=["viewer"])
    html = client.get(reverse("ui:directory_tab", args=["templates"])).content.decode()
    switch = html.split('id="tenant-switch"', 1)[1].split("</select>", 1)[0]
    assert 'value="acme"' in switch and 'value="globex"' in switch
    assert world.template.name in html and other_world.template.name not in html
    response = client.post(reverse("ui:tenant_switch"), {"tenant": "globex"})
    assert response.status_code == 302 and client.session[SESSION_TENANT_KEY] == "globex"
    html = client.get(reverse("ui:directory_tab", args=["templates"])).content.decode()
    assert other_world.template.name in html and world.template.name.join([">", "<"]) not in html
    assert "Switched to Globex" in html
    # Roles follow the tenant: a viewer in globex sees no create buttons.
    assert 'data-testid="new-template"' not in html


def test_switching_to_a_tenant_you_are_not_in_is_refused(login, operator, world, other_world):
    client = login(operator)
    response = client.post(reverse("ui:tenant_switch"), {"tenant": "globex"}, follow=True)
    assert client.session.get(SESSION_TENANT_KEY) != "globex"
    html = response.content.decode()
    assert "You are not a member of that tenant." in html
    assert other_world.template.name not in html


def test_policy_editor_saves_a_revision_and_shows_history(login, compliance, world):
    client = login(compliance)
    data = {
        "name": "standard",
        "description": "",
        "autonomy_tier": 3,
        "allowed_tools": "crm.*\nemail.*",
        "denied_tools": "email.bulk",
        "data_scopes": "crm:read",
        "cost_limit_daily_usd": "10.00",
        "cost_limit_monthly_usd": "100.00",
        "approval_timeout_seconds": 900,
        "tool_risk_overrides": "email.send = critical",
    }
    response = client.post(reverse("ui:policy_edit", args=[world.policy.pk]), data)
    assert response.status_code == 302
    world.policy.refresh_from_db()
    assert world.policy.revision == 2 and world.policy.autonomy_tier == 3
    assert world.policy.allowed_tools == ["crm.*", "email.*"]
    assert world.policy.tool_risk_overrides == {"email.send": "critical"}
    assert world.policy.cost_limit_daily_usd == Decimal("10.00")
    html = client.get(reverse("ui:policy_edit", args=[world.policy.pk])).content.decode()
    revisions = html.split('data-testid="revisions"', 1)[1]
    assert "POLICY_CHANGED" in revisions and "r1 → r2" in revisions
    assert "Full autonomy" in html and "Observe only" in html  # tiers explained in words


def test_policy_editor_errors_keep_input(login, compliance, world):
    html = (
        login(compliance)
        .post(
            reverse("ui:policy_edit", args=[world.policy.pk]),
            {
                "name": "standard",
                "autonomy_tier": 2,
                "approval_timeout_seconds": 600,
                "cost_limit_daily_usd": "500",
                "cost_limit_monthly_usd": "100",
                "tool_risk_overrides": "x = extreme",
                "allowed_tools": "keep.me",
            },
        )
        .content.decode()
    )
    assert 'data-field-error="tool_risk_overrides"' in html
    assert "keep.me" in html


def test_policy_limit_errors_from_the_envelope_validation(login, compliance, world):
    html = (
        login(compliance)
        .post(
            reverse("ui:policy_edit", args=[world.policy.pk]),
            {
                "name": "standard",
                "autonomy_tier": 2,
                "approval_timeout_seconds": 600,
                "cost_limit_daily_usd": "500",
                "cost_limit_monthly_usd": "100",
            },
        )
        .content.decode()
    )
    assert 'data-field-error="cost_limit_daily_usd"' in html and "cannot exceed the monthly" in html
    world.policy.refresh_from_db()
    assert world.policy.revision == 1


def test_attach_and_detach(login, compliance, world):
    from tests.factories import InstanceFactory

    bare = InstanceFactory(version=world.root, environment=world.dev, provider=world.provider, name="bare")
    client = login(compliance)
    client.post(reverse("ui:policy_attach", args=[world.policy.pk]), {"instance": str(bare.pk), "action": "attach"})
    bare.refresh_from_db()
    assert policy_id_of(bare) == world.policy.pk
    assert records(bare, EventType.POLICY_ATTACHED)
    client.post(reverse("ui:policy_attach", args=[world.policy.pk]), {"instance": str(bare.pk), "action": "detach"})
    bare.refresh_from_db()
    assert policy_id_of(bare) is None


def test_simulate_shows_what_would_flip(login, compliance, world):
    PolicyDecision.objects.create(
        tenant=world.tenant,
        instance=world.instance,
        policy_id=world.policy.pk,
        policy_revision=1,
        tool="crm.lookup",
        params_hash="0" * 64,
        decision=Decision.ALLOW,
        risk="low",
        reasons=[],
        actor="key:x",
        context={"instance_state": "ACTIVE", "integrity_status": "VERIFIED"},
    )
    html = (
        login(compliance)
        .post(
            reverse("ui:policy_simulate", args=[world.policy.pk]),
            {
                "name": "standard",
                "autonomy_tier": 0,
                "approval_timeout_seconds": 3600,
                "allowed_tools": "*",
                "data_scopes": "crm:*\ntickets:read",
            },
        )
        .content.decode()
    )
    assert 'data-testid="simulation-result"' in html
    assert 'data-testid="flip-count">1<' in html
    world.policy.refresh_from_db()
    assert world.policy.autonomy_tier == 2  # nothing saved


def test_cost_page_shows_spend_against_limits(login, viewer, world):
    world.policy.cost_limit_daily_usd = Decimal("10")
    world.policy.save()
    today = timezone.now().date()
    InstanceSpend.objects.create(
        tenant=world.tenant,
        instance=world.instance,
        period=SpendPeriod.DAY,
        period_start=today,
        amount_usd=Decimal("7.5"),
    )
    html = login(viewer).get(reverse("ui:cost")).content.decode()
    assert "$7.50" in html and "of $10.00" in html and 'aria-valuenow="75"' in html


def test_incidents_page_lists_quarantines_integrity_failures_and_denied_calls(login, viewer, world):
    from registry.services import version_verify_integrity
    from tests.helpers import tamper_genome

    PolicyDecision.objects.create(
        tenant=world.tenant,
        instance=world.instance,
        policy_id=world.policy.pk,
        tool="payments.refund",
        params_hash="0" * 64,
        decision=Decision.DENY,
        risk="critical",
        reasons=[{"code": "tool_not_allowed", "message": "denied"}],
        actor="key:x",
    )
    from registry.models import AgentVersion

    tamper_genome(world.root)
    version_verify_integrity(version=AgentVersion.objects.get(pk=world.root.pk))
    html = login(viewer).get(reverse("ui:incidents")).content.decode()
    assert str(world.root.pk)[:8] in html.split('data-testid="integrity-failures"', 1)[1]
    assert world.instance.name in html.split('data-testid="quarantined"', 1)[1]
    assert "payments.refund" in html.split('data-testid="denied"', 1)[1]
    world.instance.refresh_from_db()
    assert world.instance.state == InstanceState.QUARANTINED


def test_audit_filters_and_chain_verification(login, viewer, world):
    from registry.services import version_verify_integrity

    version_verify_integrity(version=world.root)
    client = login(viewer)
    html = client.get(reverse("ui:audit"), {"event_type": "INTEGRITY_VERIFIED"}).content.decode()
    table = html.split('data-testid="audit-table"', 1)[1]
    assert "INTEGRITY_VERIFIED" in table and "TEMPLATE_CREATED" not in table
    html = client.get(reverse("ui:audit"), {"verify": "1"}).content.decode()
    assert "Chain intact" in html


def test_attach_from_the_instance_drawer(login, compliance, world):
    from policies.models import PolicyEnvelope

    strict = PolicyEnvelope.objects.create(tenant=world.tenant, name="strict", autonomy_tier=1, created_by="x")
    client = login(compliance)
    row = reverse("ui:instance_policy", args=[world.instance.pk])
    html = client.get(reverse("ui:instance_detail", args=[world.instance.pk]), HTTP_HX_REQUEST="true").content.decode()
    # The drawer loads its Policy row from policies (the binding is policies'): the row has the control.
    assert f'hx-get="{row}"' in html
    html = client.get(row, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="instance-policy-form"' in html and "standard" in html and "strict" in html
    response = client.post(row, {"policy": str(strict.pk)}, HTTP_HX_REQUEST="true")
    assert "now runs under strict" in response.content.decode()
    world.instance.refresh_from_db()
    assert policy_id_of(world.instance) == strict.pk
    assert records(world.instance, EventType.POLICY_ATTACHED)
    # The drawer's history shows the attachment's records with the instance's own.
    drawer = client.get(reverse("ui:instance_detail", args=[world.instance.pk]), HTTP_HX_REQUEST="true")
    assert "POLICY_ATTACHED" in drawer.content.decode()


def test_the_drawers_policy_row_shows_the_policy_and_no_control_to_a_viewer(login, viewer, world):
    html = login(viewer).get(reverse("ui:instance_policy", args=[world.instance.pk])).content.decode()
    assert world.policy.name in html and 'data-testid="instance-policy-form"' not in html


def test_delete_policy_refused_while_attached_then_allowed(login, compliance, world):
    from policies.models import PolicyEnvelope

    client = login(compliance)
    response = client.post(reverse("ui:policy_delete", args=[world.policy.pk]), follow=True)
    assert "detach it first" in response.content.decode()
    assert PolicyEnvelope.objects.filter(pk=world.policy.pk).exists()
    client.post(reverse("ui:instance_policy", args=[world.instance.pk]), {"policy": ""})
    response = client.post(reverse("ui:policy_delete", args=[world.policy.pk]), follow=True)
    assert "Policy standard deleted." in response.content.decode()
    assert not PolicyEnvelope.objects.filter(pk=world.policy.pk).exists()
    assert records(world.policy, EventType.POLICY_DELETED)


def test_instance_drawer_loads_spend_and_decisions(login, viewer, world, other_world):
    PolicyDecision.objects.create(
        tenant=world.tenant,
        instance=world.instance,
        policy_id=world.policy.pk,
        tool="crm.lookup",
        params_hash="0" * 64,
        decision=Decision.ALLOW,
        risk="low",
        reasons=[],
        actor="key:x",
    )
    client = login(viewer)
    drawer = client.get(reverse("ui:instance_detail", args=[world.instance.pk]), HTTP_HX_REQUEST="true").content
    assert reverse("ui:instance_decisions", args=[world.instance.pk]).encode() in drawer
    html = client.get(reverse("ui:instance_decisions", args=[world.instance.pk])).content.decode()
    assert 'data-testid="instance-spend"' in html and "crm.lookup" in html
    assert client.get(reverse("ui:instance_decisions", args=[other_world.instance.pk])).status_code == 404
