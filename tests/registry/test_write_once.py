"""Write-once versions (SPEC §3): the database rejects raw UPDATEs of the genome, its hash and the
identity columns and every DELETE (SQLite and PostgreSQL triggers); the model refuses a changed genome;
the API answers 405; the columns that may change still can."""

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from arm.errors import Immutable
from arm.models import UnrecordedWrite
from audit.choices import EventType
from registry import services
from registry.models import AgentVersion
from tenancy.context import actor_context
from tests.factories import TemplateFactory, VersionFactory, make_genome
from tests.helpers import VERSION_TABLE, assert_error, db_id, raw_sql, record_count, records

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(tenant):
    return VersionFactory(template=TemplateFactory(tenant=tenant), version_label="1.4.0")


def reloaded(version) -> AgentVersion:
    return AgentVersion.objects.get(pk=version.pk)


def test_suite_runs_on_a_database_with_triggers():
    assert connection.vendor in ("sqlite", "postgresql")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (
            "genome",
            '{"model_config":{"name":"evil","provider":"x"},"prompt_bundle_hash":"sha256:00","tool_manifest":[]}',
        ),
        ("genome_hash", "0" * 64),
    ],
)
def test_raw_update_of_genome_or_hash_is_rejected_by_the_database(version, column, value):
    with pytest.raises(DatabaseError, match="write-once"):
        raw_sql(f"UPDATE {VERSION_TABLE} SET {column} = %s WHERE id = %s", [value, db_id(version)])

    fresh = reloaded(version)
    assert fresh.genome == version.genome
    assert fresh.genome_hash == version.genome_hash


def test_raw_update_of_identity_columns_is_rejected(version, tenant, other_tenant):
    other_template = TemplateFactory(tenant=tenant)
    other_version = VersionFactory(template=version.template)
    for column, value in [
        ("template_id", db_id(other_template)),
        ("parent_id", db_id(other_version)),
        ("tenant_id", db_id(other_tenant)),
    ]:
        with pytest.raises(DatabaseError, match="write-once"):
            raw_sql(f"UPDATE {VERSION_TABLE} SET {column} = %s WHERE id = %s", [value, db_id(version)])
    fresh = reloaded(version)
    assert (fresh.template_id, fresh.parent_id, fresh.tenant_id) == (version.template_id, None, tenant.pk)


def test_raw_update_of_every_row_is_rejected(tenant):
    VersionFactory.create_batch(3, template=TemplateFactory(tenant=tenant))
    with pytest.raises(DatabaseError):
        raw_sql(f"UPDATE {VERSION_TABLE} SET genome_hash = %s", ["f" * 64])
    assert not AgentVersion.objects.filter(genome_hash="f" * 64).exists()


def test_raw_delete_of_a_version_is_rejected(version):
    with pytest.raises(DatabaseError, match="cannot be deleted"):
        raw_sql(f"DELETE FROM {VERSION_TABLE} WHERE id = %s", [db_id(version)])
    assert AgentVersion.objects.filter(pk=version.pk).exists()


def test_queryset_update_and_delete_hit_the_same_triggers(version):
    with pytest.raises(UnrecordedWrite):  # refused before SQL: it would write no change record
        AgentVersion.objects.filter(pk=version.pk).update(genome_hash="1" * 64)
    with pytest.raises(DatabaseError), transaction.atomic():  # below that guard, the trigger
        AgentVersion._base_manager.filter(pk=version.pk).update(genome_hash="1" * 64)
    with pytest.raises(DatabaseError), transaction.atomic():
        AgentVersion.objects.filter(pk=version.pk)._raw_delete(connection.alias)
    assert reloaded(version).genome_hash == version.genome_hash


def test_raw_update_of_other_columns_is_allowed(version):
    # the trigger guards only the write-once columns; lifecycle and eval columns must stay writable
    changed = raw_sql(
        f"UPDATE {VERSION_TABLE} SET eval_status = %s, version_label = %s WHERE id = %s",
        ["PASS", "1.4.0-renamed", db_id(version)],
    )
    assert changed == 1
    fresh = reloaded(version)
    assert (fresh.eval_status, fresh.version_label) == ("PASS", "1.4.0-renamed")


def test_rewriting_the_same_genome_value_is_not_a_change(version):
    assert (
        raw_sql(
            f"UPDATE {VERSION_TABLE} SET genome = genome, genome_hash = genome_hash WHERE id = %s", [db_id(version)]
        )
        == 1
    )


# ---------------------------------------------------------------- model


def test_model_refuses_to_save_a_changed_genome(version):
    fresh = reloaded(version)
    fresh.genome = make_genome(model="gpt-5")
    with pytest.raises(Immutable, match="genome"):
        fresh.save()
    assert reloaded(version).genome == version.genome


def test_model_refuses_to_save_a_changed_hash_or_parent(version):
    fresh = reloaded(version)
    fresh.genome_hash = "0" * 64
    with pytest.raises(Immutable, match="genome_hash"):
        fresh.save()
    fresh = reloaded(version)
    fresh.parent = VersionFactory(template=version.template)
    with pytest.raises(Immutable, match="parent_id"):
        fresh.save()


def test_model_save_without_changes_works(version):
    fresh = reloaded(version)
    fresh.save()
    assert reloaded(version).genome_hash == version.genome_hash


def test_model_refuses_delete(version):
    with pytest.raises(Immutable):
        reloaded(version).delete()
    assert AgentVersion.objects.filter(pk=version.pk).exists()


# ---------------------------------------------------------------- API


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_api_never_edits_or_deletes_a_version(admin_member, version, method):
    before = record_count()
    payload = {"genome": make_genome(model="gpt-5"), "version_label": "9.9.9"}

    response = getattr(admin_member.client, method)(f"/api/v1/versions/{version.pk}/", payload, format="json")

    assert_error(response, 405, "method_not_allowed", contains=["write-once"])
    fresh = reloaded(version)
    assert (fresh.genome, fresh.genome_hash, fresh.version_label) == (version.genome, version.genome_hash, "1.4.0")
    assert record_count() == before


def test_read_only_fields_in_a_create_body_are_refused_by_name(operator, tenant):
    template = TemplateFactory(tenant=tenant)
    response = operator.client.post(
        "/api/v1/versions/",
        {
            "template": str(template.pk),
            "version_label": "1.0.0",
            "genome": make_genome(),
            "genome_hash": "0" * 64,
            "lifecycle_state": "APPROVED",
            "eval_status": "PASS",
        },
        format="json",
    )
    assert response.status_code == 400, response.json()
    read_only = ["Read-only field: it cannot be set."]
    assert response.json()["errors"] == {
        "genome_hash": read_only,
        "lifecycle_state": read_only,
        "eval_status": read_only,
    }
    assert not AgentVersion.objects.filter(template=template).exists()


def test_lifecycle_still_changes_through_the_service(version, operator, tenant):
    with actor_context(operator.actor, tenant):
        services.version_transition(version=version, to="TESTING", actor=operator.actor)
    fresh = reloaded(version)
    assert fresh.lifecycle_state == "TESTING"
    assert fresh.genome_hash == version.genome_hash
    assert len(records(version, EventType.VERSION_TRANSITIONED)) == 1
