"""GIN indexes for the tags and owners filters on PostgreSQL (``arm.filters.json_array_contains``:
``tags @> '["support"]'``), created only there: SQLite has no GIN and no JSON containment; its json_each
filter needs no index. ``jsonb_path_ops`` indexes exactly the ``@>`` operator the filters use."""

from django.db import migrations

INDEXES = (
    ("template_tags_gin", "registry_agenttemplate", "tags"),
    ("template_owners_gin", "registry_agenttemplate", "owners"),
)


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, column in INDEXES:
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" USING gin ("{column}" jsonb_path_ops)')


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _, _ in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("registry", "0004_input_limits")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
