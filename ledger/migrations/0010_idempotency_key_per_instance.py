"""Usage idempotency keys are scoped per instance: unique on (tenant, instance, idempotency_key), so
one instance's runtime can no longer claim another instance's key. On SQLite, changing a constraint
rebuilds the table, which drops its append-only triggers (migration 0002): they are created again."""

from django.db import migrations, models

from arm.dbtriggers import append_only, drop_triggers_sql

TABLE = "ledger_usageentry"


def sqlite_append_only_again(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return  # PostgreSQL alters the table in place; its trigger stays
    for sql in drop_triggers_sql("sqlite", TABLE):
        schema_editor.execute(sql)
    append_only(TABLE).code(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0009_one_span_series_index"),
    ]

    operations = [
        # reversed, this runs last: after the constraint is put back (another rebuild on SQLite)
        migrations.RunPython(migrations.RunPython.noop, sqlite_append_only_again),
        migrations.RemoveConstraint(
            model_name="usageentry",
            name="usage_unique_idempotency_key",
        ),
        migrations.AddConstraint(
            model_name="usageentry",
            constraint=models.UniqueConstraint(
                fields=("tenant", "instance", "idempotency_key"), name="usage_unique_idempotency_key_per_instance"
            ),
        ),
        migrations.RunPython(sqlite_append_only_again, migrations.RunPython.noop),
    ]
