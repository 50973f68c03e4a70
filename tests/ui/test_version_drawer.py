"""The version drawer verifies integrity on every read (like the API detail), shows genome, lineage,
diff, history, evaluations, and the transitions allowed now with the reason for the blocked ones."""

from html import unescape as html_unescape

import pytest
from django.urls import reverse

from audit.choices import EventType
from registry.choices import EvalStatus, InstanceState, IntegrityStatus, VersionState
from registry.models import AgentInstance
from tests.factories import InstanceFactory, VersionFactory, make_genome
from tests.helpers import records, tamper_genome

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "drawer-root"}


def drawer(client, version):
    response = client.get(reverse("ui:version_detail", args=[version.pk]), **HX)
    assert response.status_code == 200
    return response.content.decode()


def test_drawer_verifies_integrity_and_records_it(login, viewer, world):
    html = drawer(login(viewer), world.child)
    assert 'data-testid="integrity-badge"' in html and "VERIFIED" in html
    assert 'role="dialog"' in html and 'aria-modal="true"' in html
    [record] = records(world.child, EventType.INTEGRITY_VERIFIED)
    assert record.actor == f"user:{viewer.user.username}"
    world.child.refresh_from_db()
    assert world.child.integrity_status == IntegrityStatus.VERIFIED


def test_tampered_genome_shows_tampered_with_both_hashes_and_quarantines(login, viewer, world):
    tamper_genome(world.root)
    html = drawer(login(viewer), world.root)
    assert "TAMPERED" in html and world.root.genome_hash in html
    assert records(world.root, EventType.INTEGRITY_FAILED)
    assert AgentInstance.objects.get(pk=world.instance.pk).state == InstanceState.QUARANTINED


def test_drawer_shows_genome_lineage_diff_and_history(login, viewer, world):
    grandchild = VersionFactory(template=world.template, version_label="1.2.0", parent=world.child)
    html = drawer(login(viewer), world.child)
    assert "gpt-5" in html and world.child.genome_hash in html and world.child.genome["prompt_bundle_hash"] in html
    lineage = html.split('data-testid="lineage"', 1)[1].split("</ol>", 1)[0]
    assert "@1.0.0" in lineage and "@1.1.0" in lineage and "@1.2.0" in lineage
    assert reverse("ui:version_detail", args=[world.root.pk]) in lineage
    assert reverse("ui:version_detail", args=[grandchild.pk]) in lineage
    diff = html.split('data-testid="genome-diff"', 1)[1]
    assert "gpt-4.1" in diff and "gpt-5" in diff
    assert "- tool" not in diff  # same tools… but the root has the 5-tool manifest, the child 2
    assert "crm.update" in diff  # removed tools are listed
    assert 'data-testid="state-flow"' in html and 'data-current="true"' in html


def test_tool_risk_chips_and_default_risk(login, viewer, world):
    html = drawer(login(viewer), world.root)
    tools = html.split("<th>Data scopes</th>", 1)[1].split("</table>", 1)[0]
    assert 'data-status="critical"' in tools and 'data-status="low"' in tools
    # notes.read declares no risk: shown with the default, medium
    notes = tools.split("notes.read", 1)[1].split("</tr>", 1)[0]
    assert 'data-status="medium"' in notes


def test_blocked_transitions_are_disabled_with_the_reason(login, operator, world):
    testing = VersionFactory(template=world.template, version_label="5.0.0", lifecycle_state=VersionState.TESTING)
    html = drawer(login(operator), testing)
    button = html.split('data-testid="transition-CANDIDATE"', 1)[0].rsplit("<button", 1)[1]
    assert "disabled" in button
    assert "evaluation status is PENDING, PASS is required" in html


def test_four_eyes_blocks_the_creator_in_the_drawer(login, approver, world):
    candidate = VersionFactory(
        template=world.template,
        version_label="6.0.0",
        lifecycle_state=VersionState.CANDIDATE,
        eval_status=EvalStatus.PASS,
        created_by=f"user:{approver.user.username}",
    )
    html = drawer(login(approver), candidate)
    assert "Four eyes: you created this version" in html


def test_valid_transition_from_the_drawer(login, operator, world):
    client = login(operator)
    response = client.post(
        reverse("ui:version_transition", args=[world.child.pk]), {"to": "TESTING", "reason": "ready"}, **HX
    )
    assert response.status_code == 200
    assert "arm:refresh" in response["HX-Trigger-After-Swap"]
    world.child.refresh_from_db()
    assert world.child.lifecycle_state == VersionState.TESTING
    html = response.content.decode()
    assert "moved from DRAFT to TESTING" in html  # toast
    [record] = records(world.child, EventType.VERSION_TRANSITIONED)
    assert (record.transition, record.payload["reason"]) == (("DRAFT", "TESTING"), "ready")


def test_refused_transition_is_a_toast_not_a_crash(login, operator, world):
    response = login(operator).post(reverse("ui:version_transition", args=[world.child.pk]), {"to": "APPROVED"}, **HX)
    assert response.status_code == 200
    assert "Cannot move version 1.1.0 from DRAFT to APPROVED" in response.content.decode()
    world.child.refresh_from_db()
    assert world.child.lifecycle_state == VersionState.DRAFT


def test_retire_blocked_by_live_instances_explains_why(login, operator, world):
    InstanceFactory(version=world.child, environment=world.dev, provider=world.provider)
    html = drawer(login(operator), world.child)
    assert "1 instance(s) are not RETIRED yet" in html


def test_plain_get_renders_a_shareable_page(login, viewer, world):
    response = login(viewer).get(reverse("ui:version_detail", args=[world.root.pk]))
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html and "VERIFIED" in html


def test_instance_drawer_and_transition(login, operator, world):
    client = login(operator)
    html = client.get(reverse("ui:instance_detail", args=[world.instance.pk]), **HX).content.decode()
    assert 'data-testid="instance-drawer"' in html and 'data-testid="transition-PAUSED"' in html
    client.post(reverse("ui:instance_transition", args=[world.instance.pk]), {"to": "PAUSED"}, **HX)
    world.instance.refresh_from_db()
    assert world.instance.state == InstanceState.PAUSED


def test_opening_the_drawer_again_records_no_read(login, viewer, world):
    client = login(viewer)
    for _ in range(3):
        drawer(client, world.child)
    html = drawer(client, world.child)
    history = html.split('data-testid="history"', 1)[1]
    assert history.count("INTEGRITY_VERIFIED") == 1 and "×" not in history
    assert len(records(world.child, EventType.INTEGRITY_VERIFIED)) == 1


def test_genome_diff_shows_json_not_python_repr(login, viewer, world):
    genome = make_genome(
        tools=[
            {"name": "crm.lookup", "version": "1.2.0", "risk": "low", "data_scopes": ["crm:read", "crm:write"]},
            {"name": "email.send", "risk": "high"},
        ]
    )
    genome["model_config"]["parameters"] = {"temperature": 0.7, "json_mode": True}
    child = VersionFactory(template=world.template, version_label="1.0.1", parent=world.root, genome=genome)
    diff = html_unescape(drawer(login(viewer), child).split('data-testid="genome-diff"', 1)[1].split("</section>")[0])
    assert '{"temperature": 0.2}' in diff and '{"json_mode": true, "temperature": 0.7}' in diff
    assert '["crm:read"]' in diff and '["crm:read", "crm:write"]' in diff
    assert "{'" not in diff and "['" not in diff and "True" not in diff
