"""Every save writes a change record, by construction: each concrete model of ARM's own apps declares
``audit = Recorded(...)`` (a bare ``save()`` and ``delete()`` from anywhere write exactly one record, in
the same transaction) or ``audit = Unrecorded("why")``. A new model that declares neither fails here (and
in ``manage.py check``)."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from approvals.models import ApprovalRequest
from arm.errors import Immutable
from arm.models import Recorded, Unrecorded
from audit.choices import EventType
from audit.coverage import declaration, domain_models, recorded_models
from audit.models import ChangeRecord
from audit.recording import is_recorded
from audit.services import verify_chain
from ledger.models import Budget, Price
from notifications.models import Endpoint
from policies.models import PolicyAttachment, PolicyEnvelope
from registry.genome import canonicalize
from registry.models import (
    AgentInstance,
    AgentTemplate,
    AgentVersion,
    Environment,
    EvaluationResult,
    InstanceKey,
    Provider,
)
from tenancy.models import ApiKey, Membership, Tenant
from tests.factories import (
    EnvironmentFactory,
    InstanceFactory,
    ProviderFactory,
    TemplateFactory,
    UserFactory,
    VersionFactory,
    make_api_key,
    make_genome,
)

pytestmark = pytest.mark.django_db

MODELS = sorted(domain_models(), key=lambda m: m._meta.label)
RECORDED = {model._meta.label: recorded for model, recorded in recorded_models().items()}


def _version(tenant):
    genome = make_genome(model="gpt-5")
    return AgentVersion(
        tenant=tenant,
        template=TemplateFactory(tenant=tenant),
        version_label="9.9.9",
        genome=genome,
        genome_hash=hashlib.sha256(canonicalize(genome)).hexdigest(),
    )


def _approval(tenant):
    now = timezone.now()
    return ApprovalRequest(
        tenant=tenant,
        instance=InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=tenant))),
        tool="email.send",
        params_hash="ab" * 32,
        risk="high",
        requester="user:someone",
        requested_at=now,
        expires_at=now + timedelta(hours=1),
    )


def _set_tags(template):
    template.tags.append("in-place")  # a JSON list changed in place is still seen


# label -> (build an unsaved row of ``tenant``, change it in memory, the field names the change touches)
ROWS = {
    "arm.Tenant": (lambda t: Tenant(slug="fresh", name="Fresh"), lambda o: setattr(o, "name", "Renamed"), ["name"]),
    "arm.Membership": (
        lambda t: Membership(tenant=t, user=UserFactory(), roles=["viewer"]),
        lambda o: setattr(o, "roles", ["viewer", "operator"]),
        ["roles"],
    ),
    "arm.ApiKey": (
        lambda t: ApiKey(tenant=t, name="shell key", prefix="abcdef123456", key_hash="1" * 64, roles=["viewer"]),
        lambda o: setattr(o, "key_hash", "2" * 64),
        ["key_hash"],
    ),
    "registry.Environment": (
        lambda t: Environment(tenant=t, name="qa", tier="dev"),
        lambda o: setattr(o, "tier", "prod"),
        ["tier"],
    ),
    "registry.Provider": (
        lambda t: Provider(tenant=t, name="edge", type="local"),
        lambda o: setattr(o, "description", "at the edge"),
        ["description"],
    ),
    "registry.AgentTemplate": (
        lambda t: AgentTemplate(tenant=t, name="shell-made", owners=["a@example.com"], tags=["x"]),
        _set_tags,
        ["tags"],
    ),
    "registry.AgentVersion": (_version, lambda o: setattr(o, "eval_status", "PASS"), ["eval_status"]),
    "registry.EvaluationResult": (
        lambda t: EvaluationResult(
            tenant=t, version=VersionFactory(template=TemplateFactory(tenant=t)), suite="smoke", status="PASS"
        ),
        lambda o: setattr(o, "score", 0.5),
        ["score"],
    ),
    "registry.AgentInstance": (
        lambda t: AgentInstance(
            tenant=t,
            version=VersionFactory(template=TemplateFactory(tenant=t)),
            environment=EnvironmentFactory(tenant=t),
            provider=ProviderFactory(tenant=t),
            name="shell-instance",
        ),
        lambda o: setattr(o, "name", "renamed-instance"),
        ["name"],
    ),
    "approvals.ApprovalRequest": (_approval, lambda o: setattr(o, "note", "looked at it"), ["note"]),
    "policies.PolicyEnvelope": (
        lambda t: PolicyEnvelope(tenant=t, name="shell-policy", allowed_tools=["crm.*"]),
        lambda o: setattr(o, "allowed_tools", ["crm.*", "email.*"]),
        ["allowed_tools"],
    ),
    "ledger.Price": (
        lambda t: Price(
            tenant=t,
            provider="openai",
            model="shell-model",
            input_usd_per_mtok=Decimal("1"),
            output_usd_per_mtok=Decimal("2"),
            effective_from=date(2025, 1, 1),
        ),
        lambda o: setattr(o, "output_usd_per_mtok", Decimal("3")),
        ["output_usd_per_mtok"],
    ),
    "ledger.Budget": (
        lambda t: Budget(tenant=t, name="shell-budget", scope="tenant", period="monthly", amount_usd=Decimal("10")),
        lambda o: setattr(o, "amount_usd", Decimal("20")),
        ["amount_usd"],
    ),
    # Bindings whose primary key is the object they bind (the instance, the key).
    "policies.PolicyAttachment": (
        lambda t: PolicyAttachment(
            instance=InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=t))),
            tenant=t,
            policy=PolicyEnvelope.objects.create(tenant=t, name="attached-policy"),
        ),
        lambda o: setattr(o, "policy", PolicyEnvelope.objects.create(tenant=o.tenant, name="another-policy")),
        ["policy"],
    ),
    "registry.InstanceKey": (
        lambda t: InstanceKey(
            key=make_api_key(t, ["runtime"])[0],
            tenant=t,
            instance=InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=t))),
        ),
        lambda o: setattr(
            o, "instance", InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=o.tenant)))
        ),
        ["instance"],
    ),
    "notifications.Endpoint": (
        lambda t: Endpoint(tenant=t, name="shell-hook", url="https://hooks.example.com/a", secret="whsec_" + "A" * 44),
        lambda o: setattr(o, "secret", "whsec_" + "B" * 44),  # a rotation: named in the record, never shown
        ["secret"],
    ),
}

# Deletes refused by design, and what refuses them.
DELETE_REFUSED = {
    # ChangeRecord.tenant is PROTECT: a tenant with a chain (every tenant: its creation is recorded) stays.
    "arm.Tenant": ProtectedError,
    # Versions are immutable history: AgentVersion.delete, the coverage's pre_delete and a trigger refuse.
    "registry.AgentVersion": Immutable,
}


def _records(obj) -> list[ChangeRecord]:
    # By type too: a binding's id is the id of what it binds (an instance's attachment, a key's instance).
    return list(
        ChangeRecord.objects.filter(target_type=type(obj).__name__, target_id=str(obj.pk)).order_by("tenant_id", "seq")
    )


def _tenant_of(obj):
    return obj if isinstance(obj, Tenant) else obj.tenant


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m._meta.label)
def test_every_model_is_recorded_or_declared_unrecorded(model):
    label = model._meta.label
    declared = declaration(model)
    assert isinstance(declared, Recorded | Unrecorded), f"{label}: declare audit = Recorded(...) or Unrecorded('why')"
    if isinstance(declared, Unrecorded):
        assert len(declared.reason) > 20, f"{label}: say why it writes no record"
        assert not is_recorded(model)
    else:
        assert is_recorded(model)
        assert label in ROWS, f"{label} is recorded: add it to ROWS here, so its save and delete are proven"


@pytest.mark.parametrize("label", sorted(RECORDED), ids=str)
def test_a_bare_save_and_delete_write_one_record_each(label, tenant):
    build, change, fields = ROWS[label]
    recorded = RECORDED[label]
    obj = build(tenant)

    obj.save()
    created = _records(obj)
    assert [r.event_type for r in created] == [recorded.event("CREATED")]
    assert (created[0].payload["action"], created[0].payload["model"]) == ("created", label)
    assert created[0].tenant_id == _tenant_of(obj).pk
    assert created[0].actor == "system"  # no request, no command user: the system, never anonymous
    for name in recorded.name_only:
        assert name in created[0].payload["values_withheld"]
        assert name not in created[0].payload["after"]

    same_row = type(obj).objects.get(pk=obj.pk)  # as loaded from the database, like admin or a shell
    same_row.save()
    assert len(_records(obj)) == 1, "a save that changes nothing writes nothing"

    change(same_row)
    same_row.save()
    changed = _records(obj)[1:]
    assert [r.event_type for r in changed] == [recorded.event("CHANGED")]
    payload = changed[0].payload
    assert (payload["action"], payload["model"]) == ("changed", label)
    shown = set(payload["changes"]) | set(payload.get("values_withheld", []))
    assert shown == set(fields)
    for name in recorded.name_only:
        assert name not in payload["changes"]  # named, never shown
    if "key_hash" in fields:
        assert "2" * 64 not in str(payload) and "1" * 64 not in str(payload)

    if label in DELETE_REFUSED:
        with pytest.raises(DELETE_REFUSED[label]), transaction.atomic():
            type(obj).objects.get(pk=obj.pk).delete()
        assert type(obj).objects.filter(pk=obj.pk).exists()
        assert len(_records(obj)) == 2
    else:
        pk = obj.pk
        type(obj).objects.get(pk=pk).delete()
        deleted = _records(obj)[2:]
        assert [r.event_type for r in deleted] == [recorded.event("DELETED")]
        assert (deleted[0].payload["action"], deleted[0].target_id) == ("deleted", str(pk))
    assert verify_chain(_tenant_of(obj)).ok


def test_a_failed_save_leaves_no_record(tenant):
    """The record is written inside the save's transaction: a bare save (no atomic block of the caller)
    that fails afterwards in the same transaction takes its record with it."""
    template = TemplateFactory(tenant=tenant)
    before = ChangeRecord.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        template.name = "renamed"
        template.save()
        raise RuntimeError("the caller fails after the save")
    assert ChangeRecord.objects.count() == before


def test_only_unrecorded_columns_changed_writes_nothing(tenant):
    instance = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=tenant)))
    count = len(_records(instance))
    instance.last_heartbeat_at = timezone.now()
    instance.heartbeat_status = {"load": 0.4}
    instance.save()
    assert len(_records(instance)) == count
    instance.name = "renamed"
    instance.save()
    record = _records(instance)[-1]
    assert record.event_type == EventType.INSTANCE_CHANGED
    assert set(record.payload["changes"]) == {"name"}  # heartbeat columns are never listed


def test_an_instance_with_a_bound_key_is_not_deleted(tenant):
    """The binding is registry.InstanceKey (PROTECT): deleting the instance would leave the key unbound,
    able to act for every instance, so the database refuses it and writes no record."""
    instance = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=tenant)))
    key, _ = make_api_key(tenant, ["runtime"], instance=instance)
    before = ChangeRecord.objects.count()
    with pytest.raises(ProtectedError), transaction.atomic():
        instance.delete()
    assert InstanceKey.objects.get(pk=key.pk).instance_id == instance.pk
    assert ChangeRecord.objects.count() == before


def test_the_coverage_check_passes():
    call_command("check", "--fail-level", "WARNING")
