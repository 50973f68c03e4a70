"""Change records (SPEC §6): every service writes its event with the actor, in the same transaction as
the change (a change that fails leaves no record), and records are append-only below the ORM too."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.utils import DatabaseError

from arm.errors import Immutable
from audit import recording
from audit.choices import EventType
from audit.models import ChangeRecord
from audit.services import verify_chain
from registry import services
from registry.models import AgentInstance, AgentTemplate, AgentVersion, Environment
from tenancy import services as arm_services
from tenancy.context import Actor, actor_context
from tenancy.models import ApiKey
from tests.factories import (
    EnvironmentFactory,
    InstanceFactory,
    ProviderFactory,
    TemplateFactory,
    VersionFactory,
    make_genome,
)
from tests.helpers import AUDIT_TABLE, assert_error, changed, db_id, raw_sql, record_count, records

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------- every service writes its event


def _env(tenant, actor):
    return services.environment_create(tenant=tenant, actor=actor, name="prod-eu", tier="prod")


def _env_update(tenant, actor):
    env = EnvironmentFactory(tenant=tenant)
    return services.environment_update(environment=env, actor=actor, description="now documented")


def _provider(tenant, actor):
    return services.provider_create(tenant=tenant, actor=actor, name="k8s", type="local")


def _provider_update(tenant, actor):
    return services.provider_update(provider=ProviderFactory(tenant=tenant), actor=actor, description="x")


def _template(tenant, actor):
    return services.template_create(tenant=tenant, actor=actor, name="bot", owners=["ops@example.com"])


def _template_update(tenant, actor):
    return services.template_update(template=TemplateFactory(tenant=tenant), actor=actor, tags=["new-tag"])


def _template_delete(tenant, actor):
    template = TemplateFactory(tenant=tenant)
    services.template_delete(template=template, actor=actor)
    return template


def _version(tenant, actor):
    template = TemplateFactory(tenant=tenant)
    return services.version_create(
        tenant=tenant, template=template, version_label="1.0.0", genome=make_genome(), actor=actor
    )


def _version_transition(tenant, actor):
    version = VersionFactory(template=TemplateFactory(tenant=tenant))
    return services.version_transition(version=version, to="TESTING", actor=actor)


def _verify(tenant, actor):
    version = VersionFactory(template=TemplateFactory(tenant=tenant))
    services.version_verify_integrity(version=version, actor=actor)
    return version


def _evaluation(tenant, actor):
    version = VersionFactory(template=TemplateFactory(tenant=tenant))
    services.evaluation_record(version=version, suite="safety", status="PASS", score=0.9, actor=actor)
    return version


def _instance(tenant, actor):
    version = VersionFactory(template=TemplateFactory(tenant=tenant))
    return services.instance_create(
        tenant=tenant,
        version=version,
        environment=EnvironmentFactory(tenant=tenant),
        provider=ProviderFactory(tenant=tenant),
        actor=actor,
    )


def _instance_update(tenant, actor):
    instance = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=tenant)))
    return services.instance_update(instance=instance, name="renamed", actor=actor)


def _instance_transition(tenant, actor):
    instance = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=tenant)))
    return services.instance_transition(instance=instance, to="ACTIVE", actor=actor)


def _api_key(tenant, actor):
    key, _ = arm_services.api_key_create(tenant=tenant, name="ci", roles=["operator"], actor=actor)
    return key


def _api_key_revoke(tenant, actor):
    key, _ = arm_services.api_key_create(tenant=tenant, name="ci", roles=["operator"], actor=actor)
    return arm_services.api_key_revoke(key=key, actor=actor)


def _membership(tenant, actor):
    user = get_user_model().objects.create(username="newcomer")
    return arm_services.membership_set(tenant=tenant, user=user, roles=["viewer"], actor=actor)


SERVICES = [
    (_env, EventType.ENVIRONMENT_CREATED, "Environment"),
    (_env_update, EventType.ENVIRONMENT_CHANGED, "Environment"),
    (_provider, EventType.PROVIDER_CREATED, "Provider"),
    (_provider_update, EventType.PROVIDER_CHANGED, "Provider"),
    (_template, EventType.TEMPLATE_CREATED, "AgentTemplate"),
    (_template_update, EventType.TEMPLATE_CHANGED, "AgentTemplate"),
    (_template_delete, EventType.TEMPLATE_DELETED, "AgentTemplate"),
    (_version, EventType.VERSION_CREATED, "AgentVersion"),
    (_version_transition, EventType.VERSION_TRANSITIONED, "AgentVersion"),
    (_verify, EventType.INTEGRITY_VERIFIED, "AgentVersion"),
    (_evaluation, EventType.EVALUATION_RECORDED, "AgentVersion"),
    (_instance, EventType.INSTANCE_CREATED, "AgentInstance"),
    (_instance_update, EventType.INSTANCE_CHANGED, "AgentInstance"),
    (_instance_transition, EventType.INSTANCE_TRANSITIONED, "AgentInstance"),
    (_api_key, EventType.API_KEY_CREATED, "ApiKey"),
    (_api_key_revoke, EventType.API_KEY_REVOKED, "ApiKey"),
    (_membership, EventType.MEMBERSHIP_CREATED, "Membership"),
]


@pytest.mark.parametrize(("call", "event_type", "target_type"), SERVICES, ids=lambda v: getattr(v, "__name__", v))
def test_service_writes_its_event_with_the_actor(tenant, admin_member, call, event_type, target_type):
    actor = admin_member.actor
    before = record_count()

    target = call(tenant, actor)

    (record,) = records(target, event_type)
    assert record.tenant_id == tenant.pk
    assert record.actor == actor.ref
    assert record.target_type == target_type
    assert record.target_id == str(target.pk)
    assert record.event_type == event_type
    assert record_count() > before
    # One record per write: the save's own (action, model and the diff), annotated, never a second one.
    assert record.payload["action"] in ("created", "changed", "deleted")
    assert record.payload["model"].endswith(f".{target_type}")
    if not event_type.endswith(("_CREATED", "_CHANGED", "_DELETED")):  # a semantic event: an annotation
        assert record.payload["event"] == event_type
    by_the_service = [r for r in records(target) if r.actor == actor.ref]
    assert by_the_service[-1] == record
    assert len(by_the_service) == (2 if call is _api_key_revoke else 1)  # a revoked key was minted by it too


def test_tenant_create_is_recorded_in_the_new_tenants_chain(db):
    tenant = arm_services.tenant_create(slug="initech", name="Initech", actor=Actor.system("cli:ops"))
    (record,) = records(tenant, EventType.TENANT_CREATED)
    assert (record.tenant_id, record.seq, record.actor) == (tenant.pk, 1, "cli:ops")


def test_actor_comes_from_the_context_when_not_passed(tenant, operator):
    with actor_context(operator.actor, tenant):
        template = services.template_create(tenant=tenant, name="ctx-bot", owners=["ops@example.com"])
    (record,) = records(template, EventType.TEMPLATE_CREATED)
    assert record.actor == operator.actor.ref
    assert template.created_by == operator.actor.ref


def test_changes_outside_any_request_are_attributed_to_system(tenant):
    template = services.template_create(tenant=tenant, name="cron-bot", owners=["ops@example.com"])
    (record,) = records(template, EventType.TEMPLATE_CREATED)
    assert record.actor == "system"


def test_api_change_is_attributed_to_the_key(operator):
    response = operator.client.post(
        "/api/v1/templates/", {"name": "api-bot", "owners": ["ops@example.com"]}, format="json"
    )
    assert response.status_code == 201, response.json()
    (record,) = records(AgentTemplate.objects.get(pk=response.json()["id"]), EventType.TEMPLATE_CREATED)
    assert record.actor == operator.actor.ref


def test_update_records_before_and_after_of_changed_fields_only(tenant, operator):
    template = TemplateFactory(tenant=tenant, name="old", description="same", tags=["a"])
    services.template_update(template=template, actor=operator.actor, name="new", description="same")
    (record,) = records(template, EventType.TEMPLATE_CHANGED)
    assert record.payload == changed("registry.AgentTemplate", {"name": ("old", "new")})
    assert records(template, EventType.TEMPLATE_UPDATED) == []  # the old twin is no longer written


def test_update_that_changes_nothing_writes_no_record(tenant, operator):
    template = TemplateFactory(tenant=tenant, name="same")
    services.template_update(template=template, actor=operator.actor, name="same")
    assert records(template, EventType.TEMPLATE_CHANGED) == []


def test_heartbeat_writes_no_record(tenant, runtime_key):
    instance = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=tenant)), state="ACTIVE")
    before = record_count()
    response = runtime_key[1].post(f"/api/v1/instances/{instance.pk}/heartbeat/", {}, format="json")
    assert response.status_code == 200, response.json()
    assert record_count() == before


# ---------------------------------------------------------------- a failed change leaves no record


def test_duplicate_name_leaves_no_record(operator, tenant):
    TemplateFactory(tenant=tenant, name="taken")
    before = record_count()

    response = operator.client.post("/api/v1/templates/", {"name": "taken", "owners": ["a@example.com"]}, format="json")

    assert_error(response, 409, "conflict", contains=["already exists"])
    assert record_count() == before
    assert AgentTemplate.objects.filter(name="taken").count() == 1


def test_refused_transition_leaves_no_record(operator, tenant):
    version = VersionFactory(template=TemplateFactory(tenant=tenant), lifecycle_state="TESTING")
    before = record_count()
    assert operator.client.post(f"/api/v1/versions/{version.pk}/transition/", {"to": "CANDIDATE"}).status_code == 409
    assert record_count() == before


class Boom(Exception):
    pass


@pytest.fixture
def fail_after_recording(monkeypatch):
    """Make the next record_change succeed and then raise: a failure mid-way through a service, after
    its row and its record were written. Services name their event around the save, so the record is
    appended by the save receiver (``audit.recording``); ``module`` is the service module, whose own
    explicit ``record_change`` calls fail the same way."""

    def arm(module):
        real = recording.record_change

        def record_then_fail(**kwargs):
            real(**kwargs)
            # Only a service's record (services always name their actor), not the generic records of
            # the factories that set the test up.
            if kwargs.get("actor") is not None:
                raise Boom("failure after the record was written")

        monkeypatch.setattr(recording, "record_change", record_then_fail)
        if hasattr(module, "record_change"):
            monkeypatch.setattr(module, "record_change", record_then_fail)

    return arm


@pytest.mark.parametrize(
    ("call", "model"),
    [
        (_template, AgentTemplate),
        (_env, Environment),
        (_version, AgentVersion),
        (_instance, AgentInstance),
    ],
    ids=lambda v: getattr(v, "__name__", v),
)
def test_service_failing_mid_way_leaves_neither_row_nor_record(tenant, operator, fail_after_recording, call, model):
    count_before = model.objects.count()
    by_operator = ChangeRecord.objects.filter(actor=operator.actor.ref)
    records_before = by_operator.count()
    fail_after_recording(services)

    with pytest.raises(Boom):
        call(tenant, operator.actor)

    # The rows the test set up stand with their records; the service's row and record are gone, and
    # the chain head still points at the last record that stands.
    assert model.objects.count() == count_before
    assert by_operator.count() == records_before
    assert verify_chain(tenant, full=True).ok


def test_transition_failing_mid_way_keeps_the_old_state(tenant, operator, fail_after_recording):
    version = VersionFactory(template=TemplateFactory(tenant=tenant))
    before = record_count()
    fail_after_recording(services)

    with pytest.raises(Boom):
        services.version_transition(version=version, to="TESTING", actor=operator.actor)

    assert AgentVersion.objects.get(pk=version.pk).lifecycle_state == "DRAFT"
    assert record_count() == before


def test_api_key_failing_mid_way_leaves_no_key(tenant, admin_member, fail_after_recording):
    fail_after_recording(arm_services)
    with pytest.raises(Boom):
        _api_key(tenant, admin_member.actor)
    assert not ApiKey.objects.filter(name="ci").exists()
    assert [r for r in records(event_type=EventType.API_KEY_CREATED) if r.actor == admin_member.actor.ref] == []


def test_invalid_input_leaves_no_record(tenant, operator):
    before = record_count()
    with pytest.raises(ValidationError):
        services.environment_create(tenant=tenant, actor=operator.actor, name="x", tier="moon")
    assert record_count() == before


def test_record_of_a_rolled_back_outer_transaction_is_gone(tenant, operator):
    before = record_count()
    with pytest.raises(Boom), transaction.atomic():
        _template(tenant, operator.actor)
        assert record_count() == before + 1
        raise Boom
    assert record_count() == before


# ---------------------------------------------------------------- append-only


@pytest.fixture
def record(tenant):
    _template(tenant, Actor.system())
    return ChangeRecord.objects.get(tenant=tenant, seq=1)


@pytest.mark.parametrize(
    "sql",
    [
        f"UPDATE {AUDIT_TABLE} SET payload = '{{}}' WHERE id = %s",
        f"UPDATE {AUDIT_TABLE} SET actor = 'someone-else' WHERE id = %s",
        f"UPDATE {AUDIT_TABLE} SET hash = prev_hash WHERE id = %s",
    ],
)
def test_raw_update_of_a_change_record_fails(record, sql):
    with pytest.raises(DatabaseError, match="append-only"):
        raw_sql(sql, [db_id(record)])
    assert ChangeRecord.objects.get(pk=record.pk).payload == record.payload


def test_raw_delete_of_a_change_record_fails(record):
    with pytest.raises(DatabaseError, match="cannot be deleted"):
        raw_sql(f"DELETE FROM {AUDIT_TABLE} WHERE id = %s", [db_id(record)])
    assert ChangeRecord.objects.filter(pk=record.pk).exists()


def test_raw_delete_of_the_whole_table_fails(record):
    count = ChangeRecord.objects.count()
    with pytest.raises(DatabaseError):
        raw_sql(f"DELETE FROM {AUDIT_TABLE}")
    assert ChangeRecord.objects.count() == count


def test_orm_save_of_an_existing_record_raises(record):
    record.payload = {"rewritten": True}
    with pytest.raises(Immutable):
        record.save()
    assert ChangeRecord.objects.get(pk=record.pk).payload != {"rewritten": True}


def test_orm_delete_of_a_record_raises(record):
    with pytest.raises(Immutable):
        record.delete()
    assert ChangeRecord.objects.filter(pk=record.pk).exists()


def test_queryset_update_and_delete_fail_in_the_database(record):
    with pytest.raises(DatabaseError), transaction.atomic():
        ChangeRecord.objects.filter(pk=record.pk).update(actor="x")
    with pytest.raises(DatabaseError), transaction.atomic():
        ChangeRecord.objects.filter(pk=record.pk).delete()
    assert ChangeRecord.objects.get(pk=record.pk).actor == record.actor


@pytest.mark.parametrize("method", ["put", "patch", "delete", "post"])
def test_api_offers_no_way_to_change_a_record(admin_member, record, method):
    url = f"/api/v1/audit/{record.pk}/" if method != "post" else "/api/v1/audit/"
    response = getattr(admin_member.client, method)(url, {"actor": "x"}, format="json")
    assert_error(response, 405, "method_not_allowed")
    assert ChangeRecord.objects.get(pk=record.pk).actor == record.actor


def test_numbers_canonical_json_cannot_hold_still_chain(tenant):
    """Writes that bypass the API (admin, shell) may carry them: the record stores them as strings."""
    from audit.services import record_change, verify_chain

    payload = {"big": 10**30, "inf": float("inf"), "nan": float("nan"), "ok": 2**53 - 1, "flag": True}
    record = record_change(tenant=tenant, event_type=EventType.ENVIRONMENT_CHANGED, target=tenant, payload=payload)

    stored = ChangeRecord.objects.get(pk=record.pk).payload
    assert stored == {"big": str(10**30), "inf": "inf", "nan": "nan", "ok": 2**53 - 1, "flag": True}
    assert verify_chain(tenant).ok
