"""The instance an API key is bound to moves from a column of the key (``arm_apikey.instance_id``, a key up
the layers) to ``registry.InstanceKey`` (a key down: registry → tenancy).

``arm.0002_initial`` no longer creates the column, so a database built from now on never has it and this
only creates the table. A database built before has it: each bound key's instance becomes its
``InstanceKey``, with one ``INSTANCE_KEY_CREATED`` record per binding moved (actor ``system:migration
registry.0009_instance_key``, ``audit.recording.record_migration_creations``), and the column is dropped
here, after the move, because no tenancy migration may wait for a registry one (the migration graph
between apps has no cycle). Not reversible: the column is gone from tenancy's history."""

import uuid

import django.db.models.deletion
from django.db import migrations, models

MIGRATION = "registry.0009_instance_key"
TABLE = "arm_apikey"


def _as_uuid(value):
    # PostgreSQL hands back a UUID, SQLite the 32 hex characters Django stores.
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def move_bindings(apps, schema_editor):
    from audit.recording import record_migration_creations

    connection = schema_editor.connection
    with connection.cursor() as cursor:
        columns = {c.name for c in connection.introspection.get_table_description(cursor, TABLE)}
        if "instance_id" not in columns:
            return  # built after arm.0002 stopped creating the column: nothing to move
        cursor.execute(
            f"SELECT id, tenant_id, instance_id FROM {TABLE} WHERE instance_id IS NOT NULL ORDER BY created_at, id"
        )
        bindings = [tuple(_as_uuid(v) for v in row) for row in cursor.fetchall()]
    InstanceKey = apps.get_model("registry", "InstanceKey")
    InstanceKey.objects.bulk_create(
        [InstanceKey(key_id=k, tenant_id=t, instance_id=i) for k, t, i in bindings], batch_size=500
    )
    record_migration_creations(
        apps,
        migration=MIGRATION,
        label="registry.InstanceKey",
        rows=[(t, k, {"tenant": t, "instance": i}) for k, t, i in bindings],
        reason="the instance an API key is bound to moved from arm.ApiKey.instance to registry.InstanceKey "
        "(a foreign key down the layers); the binding is the one the key had",
    )
    if connection.vendor == "sqlite":
        # SQLite cannot drop a column that carries a foreign key: the table is rebuilt from tenancy's
        # historical model, which no longer has the column (what Django does for any AlterField there).
        schema_editor._remake_table(apps.get_model("arm", "ApiKey"))
    else:
        # Its foreign key constraint and index go with it.
        schema_editor.execute(f"ALTER TABLE {TABLE} DROP COLUMN instance_id")


class Migration(migrations.Migration):
    dependencies = [
        ("arm", "0007_username_lower_unique"),
        ("audit", "0015_api_key_backfill_records"),
        ("registry", "0008_provider_health_and_instance_recorded_health"),
    ]

    operations = [
        migrations.CreateModel(
            name="InstanceKey",
            fields=[
                (
                    "key",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="instance_binding",
                        serialize=False,
                        to="arm.apikey",
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "instance",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="key_bindings",
                        to="registry.agentinstance",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="arm.tenant"),
                ),
            ],
        ),
        migrations.RunPython(move_bindings, elidable=False),
    ]
