"""The policy an instance runs under moves from a column of the instance (``registry_agentinstance.policy_id``,
a key up the layers) to ``policies.PolicyAttachment`` (a key down: policies → registry).

``registry.0001_initial`` no longer creates the column, so a database built from now on never has it and
this only creates the table. A database built before has it: each instance's policy becomes its
attachment, with one ``POLICY_ATTACHMENT_CREATED`` record per binding moved (actor ``system:migration
policies.0009_policy_attachment``, ``audit.recording.record_migration_creations``), and the column is
dropped here, after the move, because no registry migration may wait for a policies one (the migration
graph between apps has no cycle). Not reversible: the column is gone from registry's history."""

import uuid

import django.db.models.deletion
from django.db import migrations, models

MIGRATION = "policies.0009_policy_attachment"
TABLE = "registry_agentinstance"


def _as_uuid(value):
    # PostgreSQL hands back a UUID, SQLite the 32 hex characters Django stores.
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def move_bindings(apps, schema_editor):
    from audit.recording import record_migration_creations

    connection = schema_editor.connection
    with connection.cursor() as cursor:
        columns = {c.name for c in connection.introspection.get_table_description(cursor, TABLE)}
        if "policy_id" not in columns:
            return  # built after registry.0001 stopped creating the column: nothing to move
        cursor.execute(
            f"SELECT id, tenant_id, policy_id FROM {TABLE} WHERE policy_id IS NOT NULL ORDER BY created_at, id"
        )
        bindings = [tuple(_as_uuid(v) for v in row) for row in cursor.fetchall()]
    Attachment = apps.get_model("policies", "PolicyAttachment")
    Attachment.objects.bulk_create(
        [Attachment(instance_id=i, tenant_id=t, policy_id=p) for i, t, p in bindings], batch_size=500
    )
    record_migration_creations(
        apps,
        migration=MIGRATION,
        label="policies.PolicyAttachment",
        rows=[(t, i, {"tenant": t, "policy": p}) for i, t, p in bindings],
        reason="the instance's policy moved from registry.AgentInstance.policy to policies.PolicyAttachment "
        "(a foreign key down the layers); the binding is the one the instance had",
    )
    if connection.vendor == "sqlite":
        # SQLite cannot drop a column that carries a foreign key: the table is rebuilt from registry's
        # historical model, which no longer has the column (what Django does for any AlterField there).
        schema_editor._remake_table(apps.get_model("registry", "AgentInstance"))
    else:
        # Its foreign key constraint and index go with it.
        schema_editor.execute(f"ALTER TABLE {TABLE} DROP COLUMN policy_id")


class Migration(migrations.Migration):
    dependencies = [
        ("arm", "0007_username_lower_unique"),
        ("audit", "0015_api_key_backfill_records"),
        ("policies", "0008_idempotent_calls_wider_spend"),
        ("registry", "0006_names_unique_ignoring_case"),
    ]

    operations = [
        migrations.CreateModel(
            name="PolicyAttachment",
            fields=[
                (
                    "instance",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="policy_attachment",
                        serialize=False,
                        to="registry.agentinstance",
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "policy",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="attachments",
                        to="policies.policyenvelope",
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
