"""A GIN index for role lookups on memberships on PostgreSQL (``arm.filters.json_array_contains``:
``roles @> '["admin"]'``, e.g. the tenants a Django admin user administers); a no-op on SQLite, whose
json_each filter needs no index."""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            'CREATE INDEX IF NOT EXISTS "membership_roles_gin" ON "arm_membership" USING gin ("roles" jsonb_path_ops)'
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute('DROP INDEX IF EXISTS "membership_roles_gin"')


class Migration(migrations.Migration):
    dependencies = [("arm", "0004_input_limits")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
