"""A service names its event around its save (``audit.recording.describe``): the save writes exactly
that record, never a second generic one; bulk inserts write their generic records in one chain
extension."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from arm.context import Actor, actor_context
from audit.choices import EventType
from audit.models import ChainHead, ChangeRecord
from audit.recording import UnconsumedDescription, describe, record_bulk_created
from audit.services import verify_chain
from registry.models import AgentTemplate, Environment
from tests.factories import EnvironmentFactory, TemplateFactory, TenantFactory

pytestmark = pytest.mark.django_db


def _records(obj):
    return list(ChangeRecord.objects.filter(target_id=str(obj.pk)).order_by("seq"))


def test_a_described_save_writes_the_named_record_only(tenant):
    env = EnvironmentFactory(tenant=tenant)
    actor = Actor(ref="user:alice")
    env.description = "documented"
    with describe(EventType.ENVIRONMENT_UPDATED, target=env, payload={"why": "docs"}, actor=actor):
        env.save()
    record = _records(env)[-1]
    assert (record.event_type, record.payload, record.actor) == (
        EventType.ENVIRONMENT_UPDATED,
        {"why": "docs"},
        "user:alice",
    )
    assert len(_records(env)) == 2  # created (generic) + the described update, no generic _CHANGED


def test_a_description_matches_the_row_not_the_python_object(tenant):
    env = EnvironmentFactory(tenant=tenant)
    fresh = Environment.objects.get(pk=env.pk)
    fresh.description = "x"
    with describe(EventType.ENVIRONMENT_UPDATED, target=env, payload={}):
        fresh.save()
    assert _records(env)[-1].event_type == EventType.ENVIRONMENT_UPDATED


def test_other_rows_saved_inside_a_description_get_their_own_records(tenant):
    env = EnvironmentFactory(tenant=tenant)
    template = TemplateFactory(tenant=tenant)
    env.description, template.description = "a", "b"
    with describe(EventType.ENVIRONMENT_UPDATED, target=env, payload={}):
        template.save()
        env.save()
    assert _records(template)[-1].event_type == EventType.TEMPLATE_CHANGED
    assert _records(env)[-1].event_type == EventType.ENVIRONMENT_UPDATED


def test_covered_rows_are_part_of_the_described_event(tenant):
    env = EnvironmentFactory(tenant=tenant)
    template = TemplateFactory(tenant=tenant)
    count = ChangeRecord.objects.count()
    env.description, template.description = "a", "b"
    with describe(EventType.ENVIRONMENT_UPDATED, target=env, payload={}, covers=[template]):
        template.save()
        env.save()
    assert ChangeRecord.objects.count() == count + 1


def test_a_description_nothing_saved_is_a_bug(tenant):
    env = EnvironmentFactory(tenant=tenant)
    with pytest.raises(UnconsumedDescription, match="ENVIRONMENT_UPDATED"):
        with describe(EventType.ENVIRONMENT_UPDATED, target=env, payload={}):
            pass


def test_generic_records_name_the_actor_of_the_context(tenant):
    env = EnvironmentFactory(tenant=tenant)
    env.name = "renamed"
    with actor_context(Actor(ref="user:shell-bob"), tenant):
        env.save()
    record = _records(env)[-1]
    assert (record.event_type, record.actor) == (EventType.ENVIRONMENT_CHANGED, "user:shell-bob")
    assert record.payload["changes"]["name"]["after"] == "renamed"


def test_bulk_inserts_write_their_records_in_one_chain_extension():
    tenant = TenantFactory()
    head_before = ChainHead.objects.get(tenant_id=tenant.pk).last_seq
    rows = [AgentTemplate(tenant=tenant, name=f"bulk-{n}", owners=["a@example.com"]) for n in range(50)]
    AgentTemplate.objects.bulk_create(rows)
    with CaptureQueriesContext(connection) as queries:
        written = record_bulk_created(rows, actor=Actor.system("system:import"))
    assert written == 50
    # lock the head, insert the records, move the head (+ savepoint): not one query per row
    assert len(queries) <= 6, [q["sql"] for q in queries]
    records = list(ChangeRecord.objects.filter(tenant=tenant, seq__gt=head_before).order_by("seq"))
    assert [r.target_id for r in records] == [str(row.pk) for row in rows]
    assert {r.event_type for r in records} == {EventType.TEMPLATE_CREATED}
    assert records[0].payload["after"]["name"] == "bulk-0"
    assert ChainHead.objects.get(tenant_id=tenant.pk).last_seq == head_before + 50
    assert verify_chain(tenant, full=True).ok


def test_objects_read_for_reading_only_carry_no_snapshot_and_refuse_a_save(tenant):
    from arm.context import reading_only
    from audit.recording import NotSnapshotted

    env = EnvironmentFactory(tenant=tenant, description="before")
    with reading_only():
        [read] = Environment.objects.filter(pk=env.pk)
    assert read.__dict__["_audit_loaded"] is None
    read.description = "after"
    with pytest.raises(NotSnapshotted), transaction.atomic():
        read.save()
    assert Environment.objects.get(pk=env.pk).description == "before"  # the save's transaction rolled back
    # Outside the block, loading snapshots again and a save records its change with the "before".
    again = Environment.objects.get(pk=env.pk)
    again.description = "after"
    again.save()
    assert _records(env)[-1].payload["changes"]["description"] == {"before": "before", "after": "after"}


@pytest.mark.parametrize("path, model", [("versions", "AgentVersion"), ("instances", "AgentInstance")])
def test_api_lists_read_without_snapshots(admin_member, tenant, path, model):
    # Every API list goes through arm.viewsets.ListMixin: its rows are serialized, never saved.
    import audit.recording
    from tests.factories import InstanceFactory, VersionFactory

    version = VersionFactory(template=TemplateFactory(tenant=tenant))
    InstanceFactory.create_batch(2, version=version)
    seen = []
    original = audit.recording._remember
    audit.recording._remember = lambda spec, obj: (seen.append(type(obj).__name__), original(spec, obj))
    try:
        response = admin_member.client.get(f"/api/v1/{path}/")
    finally:
        audit.recording._remember = original
    assert response.status_code == 200 and response.json()["results"]
    assert model not in seen
    # Outside the list, loading snapshots as before.
    seen.clear()
    audit.recording._remember = lambda spec, obj: (seen.append(type(obj).__name__), original(spec, obj))
    try:
        assert admin_member.client.get(f"/api/v1/{path}/{response.json()['results'][0]['id']}/").status_code == 200
    finally:
        audit.recording._remember = original
    assert model in seen
