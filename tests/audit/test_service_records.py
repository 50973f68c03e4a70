"""The writes that went through prepared SQL and hand-written records (a version's creation, an approval's
decision, a key's revocation with its cascade) are saves of the model now: one record per row written,
the generic diff plus the service's annotation, and none for a write that did not happen."""

import pytest

from approvals.services import approval_decide
from audit.choices import EventType
from audit.models import ChangeRecord
from audit.services import verify_chain
from registry import services
from tenancy.context import Actor
from tenancy.services import api_key_create, api_key_revoke
from tests.factories import TemplateFactory, make_genome
from tests.helpers import changed

pytestmark = pytest.mark.django_db


def _records(obj):
    return list(ChangeRecord.objects.filter(target_id=str(obj.pk)).order_by("seq"))


def test_a_version_created_through_its_prepared_insert_has_one_record(tenant, operator):
    template = TemplateFactory(tenant=tenant)
    version = services.version_create(
        tenant=tenant, template=template, version_label="1.0.0", genome=make_genome(), actor=operator.actor
    )
    [record] = _records(version)
    assert (record.event_type, record.actor) == (EventType.VERSION_CREATED, operator.actor.ref)
    assert record.payload["action"] == "created"
    after = record.payload["after"]
    assert (after["template"], after["version_label"], after["genome_hash"]) == (
        str(template.pk),
        "1.0.0",
        version.genome_hash,
    )
    assert record.payload["values_withheld"] == ["genome"]
    # The same label again: nothing inserted, nothing recorded.
    with pytest.raises(Exception, match="label"):
        services.version_create(
            tenant=tenant, template=template, version_label="1.0.0", genome=make_genome(), actor=operator.actor
        )
    assert ChangeRecord.objects.filter(event_type=EventType.VERSION_CREATED, target_type="AgentVersion").count() == 1


def test_an_approval_decision_is_one_record_with_its_diff(tenant, approver):
    from tests.audit.test_every_model_recorded import _approval

    approval = _approval(tenant)
    approval.save()
    count = len(_records(approval))
    decided = approval_decide(approval=approval, approve=False, note="not today", actor=approver.actor)
    records = _records(approval)[count:]
    assert len(records) == 1
    [record] = records
    assert (record.event_type, record.actor) == (EventType.APPROVAL_DECIDED, approver.actor.ref)
    decided_at = record.payload["changes"]["decided_at"]["after"]
    assert record.payload == changed(
        "approvals.ApprovalRequest",
        {
            "status": ("PENDING", "DENIED"),
            "decided_by": ("", approver.actor.ref),
            "decided_at": (None, decided_at),
            "note": ("", "not today"),
        },
        event="APPROVAL_DECIDED",
    )
    assert decided_at.startswith(decided.decided_at.isoformat()[:19])


def test_a_revocation_is_one_record_per_key_it_revokes(tenant, admin_member):
    root, _ = api_key_create(tenant=tenant, name="root", roles=["operator"], actor=admin_member.actor)
    child, _ = api_key_create(tenant=tenant, name="child", roles=["operator"], actor=Actor.for_key(root))
    counts = {key.pk: len(_records(key)) for key in (root, child)}
    api_key_revoke(key=root, actor=admin_member.actor)
    for key in (root, child):
        [record] = _records(key)[counts[key.pk] :]
        assert (record.event_type, record.actor) == (EventType.API_KEY_REVOKED, admin_member.actor.ref)
        assert record.payload["changes"]["revoked_at"]["before"] is None
        assert record.payload["changes"]["revoked_at"]["after"]
    assert "minted_by_revoked_key" not in _records(root)[-1].payload
    assert _records(child)[-1].payload["minted_by_revoked_key"] == root.prefix
    assert verify_chain(tenant, full=True).ok
