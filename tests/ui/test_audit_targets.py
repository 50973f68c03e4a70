"""Change records name their targets by name, not id (issue 26 item 6): the audit page and the incidents'
integrity failures resolve a page's targets with one query per target type present (the count does not
grow with the rows), and a target deleted since keeps its short id. Change payloads render list and
dict values as JSON, never Python reprs (the policy revision history)."""

import uuid

import pytest
from django.urls import reverse

from audit.choices import EventType
from audit.models import ChangeRecord
from audit.selectors import label_targets
from audit.services import record_change
from policies import services as policy_services
from tenancy.context import Actor
from tests.conftest import assert_constant_queries, count_queries
from tests.factories import InstanceFactory, VersionFactory

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system()


def _record(world, target, event=EventType.INTEGRITY_VERIFIED, target_type=None):
    return record_change(
        tenant=world.tenant, event_type=event, target=target, payload={}, actor=SYSTEM, target_type=target_type
    )


def _table(html: str) -> str:
    return html.split('data-testid="audit-table"', 1)[1].split("</table>", 1)[0]


def test_audit_page_names_targets(login, viewer, world):
    _record(world, world.root)
    _record(world, world.instance)
    _record(world, world.policy, EventType.POLICY_CHANGED)
    _record(world, world.approval, EventType.APPROVAL_REQUESTED)
    table = _table(login(viewer).get(reverse("ui:audit")).content.decode())
    assert "support-bot@1.0.0" in table
    assert ">support-eu-1<" in table
    assert ">standard<" in table
    assert "email.send on support-eu-1" in table
    assert str(world.root.pk)[:8] + "…<" not in table  # a name, not the short id


def test_a_deleted_target_keeps_its_short_id():
    gone = str(uuid.uuid4())
    record = ChangeRecord(tenant_id=1, target_type="AgentVersion", target_id=gone)
    (labelled,) = label_targets([record])
    assert labelled.target_label == gone[:8] + "…"


def test_names_come_only_from_the_records_tenant(world, other_world):
    # a record naming another tenant's object by id never shows that object's name
    record = ChangeRecord(tenant_id=world.tenant.pk, target_type="AgentVersion", target_id=str(other_world.root.pk))
    (labelled,) = label_targets([record])
    assert labelled.target_label == str(other_world.root.pk)[:8] + "…"


def test_audit_page_resolves_names_with_one_query_per_target_type(login, viewer, world):
    client = login(viewer)

    def make_rows(n):
        for i in range(n):
            version = VersionFactory(template=world.template, version_label=f"2.{i}.{uuid.uuid4().hex[:4]}")
            instance = InstanceFactory(version=world.root, environment=world.dev, provider=world.provider)
            _record(world, version)
            _record(world, instance)

    def request():
        # the records made here only (factories record their own creations, of other types)
        response = client.get(reverse("ui:audit"), {"page_size": 50, "event_type": EventType.INTEGRITY_VERIFIED})
        assert response.status_code == 200
        return response

    assert_constant_queries(make_rows, request)
    # and each type present adds exactly one query: a page of versions and instances runs two more than
    # a page of records about nothing nameable
    labelled = list(
        ChangeRecord.objects.filter(tenant=world.tenant, event_type=EventType.INTEGRITY_VERIFIED).order_by("-seq")[:50]
    )
    assert {r.target_type for r in labelled} == {"AgentVersion", "AgentInstance"}
    assert count_queries(lambda: label_targets(labelled)) == 2


def test_incidents_name_the_tampered_version(login, viewer, world):
    _record(world, world.root, EventType.INTEGRITY_FAILED)
    html = login(viewer).get(reverse("ui:incidents")).content.decode()
    assert "support-bot@1.0.0</a>" in html


def test_policy_revision_history_shows_lists_as_json(login, compliance, world):
    policy_services.policy_update(policy=world.policy, actor=compliance.actor, denied_tools=["*.delete", "shell.*"])
    html = login(compliance).get(reverse("ui:policy_edit", args=[world.policy.pk])).content.decode()
    history = html.split('data-testid="revisions"', 1)[1].split("</ol>", 1)[0]
    assert "[&#x27;" not in history and "['" not in history  # no Python repr
    assert "[&quot;*.delete&quot;, &quot;shell.*&quot;]" in history
