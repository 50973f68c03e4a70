"""Another tenant's objects answer 404 on every UI page and form post, for every role, and change
nothing (SPEC §2: never 403, never reveal existence)."""

import pytest
from django.urls import reverse

from approvals.choices import ApprovalStatus
from registry.models import AgentInstance, AgentTemplate, AgentVersion
from tests.helpers import policy_id_of, record_count

pytestmark = pytest.mark.django_db


def foreign_gets(w):
    return [
        reverse("ui:version_detail", args=[w.root.pk]),
        reverse("ui:instance_detail", args=[w.instance.pk]),
        reverse("ui:template_edit", args=[w.template.pk]),
        reverse("ui:policy_edit", args=[w.policy.pk]),
        reverse("ui:version_evaluation", args=[w.child.pk]),
        reverse("ui:provider_edit", args=[w.provider.pk]),
        reverse("ui:environment_edit", args=[w.dev.pk]),
    ]


def foreign_posts(w):
    return [
        (reverse("ui:version_transition", args=[w.child.pk]), {"to": "TESTING"}),
        (reverse("ui:instance_transition", args=[w.instance.pk]), {"to": "PAUSED"}),
        (reverse("ui:template_edit", args=[w.template.pk]), {"name": "stolen", "owners": "x@example.com"}),
        (
            reverse("ui:policy_edit", args=[w.policy.pk]),
            {"name": "stolen", "autonomy_tier": 5, "approval_timeout_seconds": 60},
        ),
        (
            reverse("ui:policy_simulate", args=[w.policy.pk]),
            {"name": "x", "autonomy_tier": 5, "approval_timeout_seconds": 60},
        ),
        (reverse("ui:policy_attach", args=[w.policy.pk]), {"instance": str(w.instance.pk), "action": "detach"}),
        (reverse("ui:approval_decide", args=[w.approval.pk]), {"decision": "approve"}),
        (reverse("ui:instance_policy", args=[w.instance.pk]), {"policy": ""}),
        (reverse("ui:policy_delete", args=[w.policy.pk]), {}),
        (reverse("ui:version_evaluation", args=[w.child.pk]), {"suite": "stolen", "status": "PASS"}),
        (reverse("ui:provider_edit", args=[w.provider.pk]), {"name": "stolen", "type": "local"}),
        (reverse("ui:environment_edit", args=[w.dev.pk]), {"name": "stolen", "tier": "prod"}),
    ]


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "compliance", "admin"])
def test_foreign_objects_are_404_on_reads(login, cast, role, world, other_world):
    client = login(cast[role])
    for own_url, foreign_url in zip(foreign_gets(world), foreign_gets(other_world), strict=True):
        own = client.get(own_url).status_code
        if own == 403:  # the role may not open this form at all: the same answer, whoever owns the id
            assert client.get(foreign_url).status_code == 403, (role, foreign_url)
            continue
        assert own == 200, (role, own_url, own)
        assert client.get(foreign_url).status_code == 404, (role, foreign_url)
        assert client.get(foreign_url, HTTP_HX_REQUEST="true").status_code == 404, (role, foreign_url)


@pytest.mark.parametrize("role", ["operator", "approver", "compliance", "admin"])
def test_foreign_objects_are_404_on_writes_and_nothing_changes(login, cast, role, world, other_world):
    client = login(cast[role])
    before = record_count()
    for url, data in foreign_posts(other_world):
        response = client.post(url, data)
        # A role that may not use the form at all is refused before the lookup (403); either way the
        # object is untouched and its existence not confirmed by a different answer than a missing id.
        assert response.status_code in (403, 404), (role, url, response.status_code)
    assert record_count() == before
    other_world.approval.refresh_from_db()
    assert other_world.approval.status == ApprovalStatus.PENDING
    assert AgentTemplate.objects.get(pk=other_world.template.pk).name == other_world.template.name
    assert policy_id_of(other_world.instance) == other_world.policy.pk


def test_admin_gets_404_not_403_for_every_foreign_write(login, admin_member, world, other_world):
    client = login(admin_member)
    for url, data in foreign_posts(other_world):
        assert client.post(url, data).status_code == 404, url


def test_create_forms_refuse_foreign_references(login, operator, world, other_world):
    client = login(operator)
    versions_before = AgentVersion.objects.count()
    response = client.post(
        reverse("ui:version_create"),
        {
            "template": str(other_world.template.pk),
            "version_label": "9.0.0",
            "genome_mode": "raw",
            "genome_json": '{"model_config": {"provider": "openai", "name": "x"}, "prompt_bundle_hash": "sha256:'
            + "ab" * 32
            + '", "tool_manifest": []}',
        },
    )
    assert response.status_code == 200
    assert b"Select a valid choice" in response.content
    assert AgentVersion.objects.count() == versions_before
    instances_before = AgentInstance.objects.count()
    response = client.post(
        reverse("ui:instance_create"),
        {
            "version": str(world.root.pk),
            "environment": str(other_world.dev.pk),
            "provider": str(other_world.provider.pk),
            "policy": str(other_world.policy.pk),
        },
    )
    assert response.status_code == 200
    assert AgentInstance.objects.count() == instances_before


def test_parent_options_never_list_another_tenants_versions(login, operator, world, other_world):
    client = login(operator)
    html = client.get(reverse("ui:version_parent_options"), {"template": str(other_world.template.pk)}).content
    assert str(other_world.root.pk).encode() not in html
    html = client.get(reverse("ui:version_parent_options"), {"template": str(world.template.pk)}).content
    assert str(world.root.pk).encode() in html


def test_global_search_only_finds_own_rows(login, viewer, world, other_world):
    client = login(viewer)
    response = client.get(reverse("ui:search"), {"q": other_world.template.name})
    assert response.status_code == 200
    html = response.content.decode()
    results = html.split('data-testid="search-results"', 1)[1]
    assert results.count("match.</li>") == 3  # every kind says it has no match
    assert f">{other_world.template.name}<" not in results and f">{other_world.instance.name}<" not in results
    assert 'data-testid="empty-state"' in html


def test_audit_page_shows_only_own_records(login, viewer, world, other_world):
    from audit.choices import EventType
    from audit.models import ChangeRecord
    from audit.services import record_change

    record_change(
        tenant=other_world.tenant,
        event_type=EventType.TEMPLATE_CHANGED,
        target=other_world.template,
        payload={"secret": "gx-marker"},
    )
    html = login(viewer).get(reverse("ui:audit")).content.decode()
    assert "gx-marker" not in html
    assert ChangeRecord.objects.filter(tenant=other_world.tenant).exists()


def test_instance_policy_form_refuses_a_foreign_policy(login, compliance, world, other_world):
    response = login(compliance).post(
        reverse("ui:instance_policy", args=[world.instance.pk]), {"policy": str(other_world.policy.pk)}
    )
    assert response.status_code == 404
    world.instance.refresh_from_db()
    assert policy_id_of(world.instance) == world.policy.pk
