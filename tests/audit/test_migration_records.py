"""Data migrations that rewrite recorded rows append their records: ``audit.0015`` appends those
``arm.0003_apikey_principal`` and ``arm.0006_apikey_minters`` never wrote (docs/audit.md)."""

import importlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

from audit.choices import EventType
from audit.models import ChangeRecord
from audit.recording import recorded_update
from audit.services import verify_chain
from tenancy.models import ApiKey
from tests.helpers import changed

pytestmark = pytest.mark.django_db

MIGRATION = importlib.import_module("audit.migrations.0015_api_key_backfill_records")


def _applied(name: str, when) -> None:
    MigrationRecorder(connection).migration_qs.filter(app="arm", name=name).update(applied=when)


def test_the_keys_backfilled_by_arm_0003_and_0006_get_their_records(tenant, operator):
    from tenancy.services import api_key_create

    minted, _ = api_key_create(tenant=tenant, name="minted", roles=["operator"], actor=operator.actor)
    later, _ = api_key_create(tenant=tenant, name="later", roles=["operator"], actor=operator.actor)
    # The keys that existed when the migrations ran: all but ``later``, minted after them.
    long_ago = timezone.now() - timedelta(days=30)
    recorded_update(ApiKey.objects.exclude(pk=later.pk), created_at=long_ago)
    _applied("0003_apikey_principal", long_ago + timedelta(seconds=1))
    _applied("0006_apikey_minters", long_ago + timedelta(seconds=2))
    before = ChangeRecord.objects.count()

    MIGRATION.append_records(apps, SimpleNamespace(connection=connection))

    mine = list(ChangeRecord.objects.filter(actor__startswith="system:migration").order_by("tenant_id", "seq"))
    assert ChangeRecord.objects.count() == before + len(mine)
    # ``minted`` acts for the key that minted it (arm.0003) and has it above it (arm.0006); the cast's keys
    # were minted by a command, so neither migration changed them: no record.
    assert {r.target_id for r in mine} == {str(minted.pk)}
    principal, minters = mine
    assert (principal.event_type, principal.actor) == (
        EventType.API_KEY_CHANGED,
        "system:migration arm.0003_apikey_principal",
    )
    assert principal.payload == changed(
        "arm.ApiKey", {"principal": ("", f"key:{operator.key.prefix}")}, reason=principal.payload["reason"]
    )
    assert "arm.0003_apikey_principal" in principal.payload["reason"]
    assert minters.actor == "system:migration arm.0006_apikey_minters"
    assert minters.payload["changes"] == {"minters": {"before": [], "after": [operator.key.prefix]}}
    assert verify_chain(tenant, full=True).ok


def test_a_database_migrated_from_scratch_gets_no_records(tenant, operator):
    before = ChangeRecord.objects.count()
    MIGRATION.append_records(apps, SimpleNamespace(connection=connection))  # the keys are newer than arm.0003
    assert ChangeRecord.objects.count() == before
