"""Writes that send no signals cannot skip the trail: ``update()`` / ``bulk_update()`` / ``bulk_create()``
of a recorded model's recorded columns are refused; ``audit.recording.recorded_update`` and
``recorded_bulk_create`` write their records."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import ApprovalRequest
from arm.models import UnrecordedWrite
from audit.choices import EventType, UnknownEvent
from audit.models import ChainHead, ChangeRecord
from audit.recording import recorded_bulk_create, recorded_update
from audit.services import verify_chain
from registry.models import AgentInstance, AgentTemplate, Environment
from tenancy.context import Actor
from tenancy.models import ApiKey
from tests.factories import (
    EnvironmentFactory,
    InstanceFactory,
    TemplateFactory,
    TenantFactory,
    VersionFactory,
    make_api_key,
)

pytestmark = pytest.mark.django_db


def _records(obj):
    return list(ChangeRecord.objects.filter(target_id=str(obj.pk)).order_by("seq"))


def test_update_of_a_recorded_column_is_refused_and_writes_nothing(tenant):
    env = EnvironmentFactory(tenant=tenant, description="kept")
    with pytest.raises(UnrecordedWrite, match="description"):
        Environment.objects.filter(pk=env.pk).update(description="silently changed")
    assert Environment.objects.get(pk=env.pk).description == "kept"


def test_bulk_update_and_bulk_create_of_a_recorded_model_are_refused(tenant):
    env = EnvironmentFactory(tenant=tenant, description="kept")
    env.description = "silently changed"
    with pytest.raises(UnrecordedWrite, match="bulk_update"):
        Environment.objects.bulk_update([env], ["description"])
    with pytest.raises(UnrecordedWrite, match="bulk_create"):
        AgentTemplate.objects.bulk_create([AgentTemplate(tenant=tenant, name="bulk", owners=["a@example.com"])])
    assert Environment.objects.get(pk=env.pk).description == "kept"
    assert not AgentTemplate.objects.filter(name="bulk").exists()


def test_update_of_unrecorded_columns_stays_one_plain_update(tenant):
    instance = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=tenant)))
    key, _ = make_api_key(tenant, ["viewer"])
    before = ChangeRecord.objects.count()
    now = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        AgentInstance.objects.filter(pk=instance.pk).update(last_heartbeat_at=now, heartbeat_status={"ok": 1})
    assert len(queries) == 1
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    assert ChangeRecord.objects.count() == before


def test_recorded_update_writes_one_record_per_changed_row_with_the_stored_before(tenant, other_tenant):
    mine = EnvironmentFactory.create_batch(2, tenant=tenant, description="old")
    theirs = EnvironmentFactory(tenant=other_tenant, description="old")
    same = EnvironmentFactory(tenant=tenant, description="new")
    heads = {t.pk: ChainHead.objects.get(tenant_id=t.pk).last_seq for t in (tenant, other_tenant)}
    rows = recorded_update(
        Environment.objects.filter(pk__in=[e.pk for e in (*mine, theirs, same)]),
        reason="docs sweep",
        actor=Actor(ref="user:alice"),
        description="new",
    )
    assert {r.pk for r in rows} == {e.pk for e in (*mine, theirs, same)}
    assert set(Environment.objects.filter(pk__in=[r.pk for r in rows]).values_list("description", flat=True)) == {"new"}
    for env in (*mine, theirs):
        [record] = _records(env)[1:]
        assert (record.event_type, record.actor) == (EventType.ENVIRONMENT_CHANGED, "user:alice")
        assert record.payload["changes"] == {"description": {"before": "old", "after": "new"}}
        assert record.payload["reason"] == "docs sweep"
    assert len(_records(same)) == 1  # nothing of it changed: no record
    assert ChainHead.objects.get(tenant_id=tenant.pk).last_seq == heads[tenant.pk] + 2
    assert ChainHead.objects.get(tenant_id=other_tenant.pk).last_seq == heads[other_tenant.pk] + 1
    assert verify_chain(tenant, full=True).ok and verify_chain(other_tenant, full=True).ok


def test_recorded_update_is_conditional_and_annotates_every_row_with_its_event(tenant):
    from approvals.choices import ApprovalStatus
    from tests.audit.test_every_model_recorded import _approval

    pending = _approval(tenant)
    pending.save()
    already = _approval(tenant)
    already.tool = "other.tool"
    already.status = ApprovalStatus.DENIED
    already.save()
    rows = recorded_update(
        ApprovalRequest.objects.filter(pk__in=[pending.pk, already.pk], status=ApprovalStatus.PENDING),
        event=EventType.APPROVAL_EXPIRED,
        extra={"expired_at": "now"},
        status=ApprovalStatus.EXPIRED,
    )
    assert [r.pk for r in rows] == [pending.pk]
    assert ApprovalRequest.objects.get(pk=already.pk).status == ApprovalStatus.DENIED
    record = _records(pending)[-1]
    assert record.event_type == EventType.APPROVAL_EXPIRED
    assert record.payload["changes"] == {"status": {"before": "PENDING", "after": "EXPIRED"}}
    assert (record.payload["event"], record.payload["expired_at"]) == ("APPROVAL_EXPIRED", "now")
    assert len(_records(already)) == 1


def test_recorded_update_refuses_expressions_and_undeclared_events(tenant):
    from django.db.models import F

    env = EnvironmentFactory(tenant=tenant)
    with pytest.raises(TypeError):
        recorded_update(Environment.objects.filter(pk=env.pk), description=F("name"))
    with pytest.raises(UnknownEvent):
        recorded_update(Environment.objects.filter(pk=env.pk), event=EventType.APPROVAL_USED, description="x")
    assert len(_records(env)) == 1


def test_recorded_bulk_create_writes_the_records_in_one_chain_extension():
    tenant = TenantFactory()
    head_before = ChainHead.objects.get(tenant_id=tenant.pk).last_seq
    rows = [AgentTemplate(tenant=tenant, name=f"bulk-{n}", owners=["a@example.com"]) for n in range(50)]
    with CaptureQueriesContext(connection) as queries:
        recorded_bulk_create(rows, actor=Actor.system("system:import"))
    # insert the rows, lock the head, insert the records, move the head (+ savepoint): not one query per row
    assert len(queries) <= 7, [q["sql"] for q in queries]
    records = list(ChangeRecord.objects.filter(tenant=tenant, seq__gt=head_before).order_by("seq"))
    assert [r.target_id for r in records] == [str(row.pk) for row in rows]
    assert {(r.event_type, r.actor) for r in records} == {(EventType.TEMPLATE_CREATED, "system:import")}
    assert records[0].payload["after"]["name"] == "bulk-0"
    assert verify_chain(tenant, full=True).ok
