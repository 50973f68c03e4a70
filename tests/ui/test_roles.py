"""Role checks on every form post: the UI offers only what a role may do, and the server refuses the
rest (403) without writing anything."""

import pytest
from django.urls import reverse

from approvals.choices import ApprovalStatus
from policies.models import PolicyEnvelope
from registry.choices import VersionState
from registry.models import AgentTemplate
from tests.helpers import record_count

pytestmark = pytest.mark.django_db

TEMPLATE_DATA = {"name": "new-agent", "owners": "owner@example.com", "tags": "support"}
POLICY_DATA = {"name": "strict", "autonomy_tier": 1, "approval_timeout_seconds": 600, "allowed_tools": "crm.*"}


def writes(w):
    return {
        "template_create": (reverse("ui:template_create"), TEMPLATE_DATA, ("operator", "admin")),
        "template_edit": (
            reverse("ui:template_edit", args=[w.template.pk]),
            {**TEMPLATE_DATA, "name": "renamed"},
            ("operator", "admin"),
        ),
        "version_create": (reverse("ui:version_create"), {"template": str(w.template.pk)}, ("operator", "admin")),
        "instance_create": (reverse("ui:instance_create"), {"version": str(w.root.pk)}, ("operator", "admin")),
        "version_transition": (
            reverse("ui:version_transition", args=[w.child.pk]),
            {"to": "TESTING"},
            ("operator", "approver", "admin"),
        ),
        "instance_transition": (
            reverse("ui:instance_transition", args=[w.instance.pk]),
            {"to": "PAUSED"},
            ("operator", "approver", "admin"),
        ),
        "policy_create": (reverse("ui:policy_create"), POLICY_DATA, ("compliance", "admin")),
        "policy_simulate": (reverse("ui:policy_simulate", args=[w.policy.pk]), POLICY_DATA, ("compliance", "admin")),
        "policy_attach": (
            reverse("ui:policy_attach", args=[w.policy.pk]),
            {"instance": str(w.instance.pk), "action": "detach"},
            ("compliance", "admin"),
        ),
        "api_key_create": (reverse("ui:api_keys"), {"name": "k", "roles": ["viewer"]}, ("admin",)),
        "api_key_revoke": (reverse("ui:api_key_revoke", args=[w.instance.pk]), {}, ("admin",)),
        "policy_delete": (reverse("ui:policy_delete", args=[w.policy.pk]), {}, ("compliance", "admin")),
        "instance_policy": (
            reverse("ui:instance_policy", args=[w.instance.pk]),
            {"policy": ""},
            ("compliance", "admin"),
        ),
        "approval_decide": (
            reverse("ui:approval_decide", args=[w.approval.pk]),
            {"decision": "approve"},
            ("approver", "admin"),
        ),
    }


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "compliance"])
def test_roles_without_the_right_get_403_and_nothing_is_written(login, cast, role, world):
    client = login(cast[role])
    for name, (url, data, allowed) in writes(world).items():
        if role in allowed:
            continue
        before = record_count()
        response = client.post(url, data)
        assert response.status_code == 403, (role, name, response.status_code)
        assert record_count() == before, (role, name)


def test_policy_edit_post_by_a_non_compliance_role_changes_nothing(login, operator, world):
    client = login(operator)
    response = client.post(reverse("ui:policy_edit", args=[world.policy.pk]), POLICY_DATA)
    assert response.status_code == 403
    assert "needs the compliance or admin role" in response.text
    world.policy.refresh_from_db()
    assert world.policy.name == "standard" and world.policy.revision == 1


def test_viewer_sees_no_write_buttons(login, viewer, world):
    client = login(viewer)
    directory = client.get(reverse("ui:directory")).content.decode()
    assert 'data-testid="new-template"' not in directory
    assert 'data-testid="new-version"' not in directory
    drawer = client.get(reverse("ui:version_detail", args=[world.child.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="transition-form"' not in drawer
    assert "Your role can read this version but not move it." in drawer
    policies = client.get(reverse("ui:policies")).content.decode()
    assert 'data-testid="new-policy"' not in policies
    editor = client.get(reverse("ui:policy_edit", args=[world.policy.pk])).content.decode()
    assert 'data-testid="simulate"' not in editor and "read-only for your role" in editor
    approvals = client.get(reverse("ui:approvals")).content.decode()
    assert 'data-testid="approve"' not in approvals


def test_operator_sees_create_buttons_and_transitions(login, operator, world):
    client = login(operator)
    directory = client.get(reverse("ui:directory")).content.decode()
    assert 'data-testid="new-template"' in directory and 'data-testid="new-instance"' in directory
    drawer = client.get(reverse("ui:version_detail", args=[world.child.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="transition-TESTING"' in drawer


def test_approver_sees_approve_buttons_and_disabled_operator_transitions(login, approver, world):
    client = login(approver)
    assert 'data-testid="approve"' in client.get(reverse("ui:approvals")).content.decode()
    drawer = client.get(reverse("ui:version_detail", args=[world.child.pk]), HTTP_HX_REQUEST="true").content.decode()
    # DRAFT → TESTING is an operator transition: offered disabled, with the reason.
    assert 'data-testid="transition-TESTING"' in drawer
    assert "Needs role: operator" in drawer


def test_permitted_roles_succeed(login, cast, world):
    assert login(cast["operator"]).post(reverse("ui:template_create"), TEMPLATE_DATA).status_code == 302
    assert AgentTemplate.objects.filter(tenant=world.tenant, name="new-agent").exists()
    assert login(cast["compliance"]).post(reverse("ui:policy_create"), POLICY_DATA).status_code == 302
    assert PolicyEnvelope.objects.filter(tenant=world.tenant, name="strict").exists()
    login(cast["operator"]).post(reverse("ui:version_transition", args=[world.child.pk]), {"to": "TESTING"})
    world.child.refresh_from_db()
    assert world.child.lifecycle_state == VersionState.TESTING
    login(cast["approver"]).post(reverse("ui:approval_decide", args=[world.approval.pk]), {"decision": "approve"})
    world.approval.refresh_from_db()
    assert world.approval.status == ApprovalStatus.APPROVED


def test_every_form_post_needs_a_csrf_token(login, admin_member, world):
    client = login(admin_member, enforce_csrf=True)
    for name, (url, data, _) in writes(world).items():
        assert client.post(url, data).status_code == 403, name
    assert client.post(reverse("ui:tenant_switch"), {"tenant": "acme"}).status_code == 403
    world.approval.refresh_from_db()
    assert world.approval.status == ApprovalStatus.PENDING


def test_get_on_post_only_endpoints_is_refused(login, admin_member, world):
    client = login(admin_member)
    for url in (
        reverse("ui:version_transition", args=[world.child.pk]),
        reverse("ui:approval_decide", args=[world.approval.pk]),
        reverse("ui:policy_attach", args=[world.policy.pk]),
        reverse("ui:tenant_switch"),
    ):
        assert client.get(url).status_code == 405, url
