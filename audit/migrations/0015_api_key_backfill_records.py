"""The change records two data migrations of ``arm`` did not write.

``arm.0003_apikey_principal`` added ``principal`` and ``principal_user`` to every API key and filled them
(the principal four eyes compares), and ``arm.0006_apikey_minters`` added ``minters`` and filled it; both
rewrote existing keys without a record. This appends one ``API_KEY_CHANGED`` record per key each of them
changed, by ``system:migration arm.<name>``: the key existed when that migration was applied (its
``created_at`` is not later), and the value it holds now differs from the new column's default, which is
the before-value (the migration added the column with it). Keys minted later got theirs when minted,
recorded by their ``API_KEY_CREATED``. A database migrated from scratch has no such keys: nothing is
appended. Data migrations written from now on append their records themselves
(``audit.recording.record_migration_changes``)."""

from django.db import migrations
from django.db.migrations.recorder import MigrationRecorder

# (migration of arm, {field: (attname, the default the column was added with)})
BACKFILLS = (
    ("0003_apikey_principal", {"principal": ("principal", ""), "principal_user": ("principal_user_id", None)}),
    ("0006_apikey_minters", {"minters": ("minters", [])}),
)


def append_records(apps, schema_editor):
    from audit.recording import record_migration_changes

    ApiKey = apps.get_model("arm", "ApiKey")
    names = [name for name, _ in BACKFILLS]
    applied = dict(
        MigrationRecorder(schema_editor.connection)
        .migration_qs.filter(app="arm", name__in=names)
        .values_list("name", "applied")
    )
    for name, fields in BACKFILLS:
        if name not in applied:
            continue
        rows = []
        for key in ApiKey.objects.filter(created_at__lte=applied[name]).order_by("created_at", "pk"):
            changes = {
                field: (default, getattr(key, attname))
                for field, (attname, default) in fields.items()
                if getattr(key, attname) != default
            }
            if changes:
                rows.append((key.tenant_id, key.pk, changes))
        record_migration_changes(
            apps,
            migration=f"arm.{name}",
            label="arm.ApiKey",
            rows=rows,
            reason=f"migration arm.{name} set this for the keys that existed when it ran, without a record; "
            "appended by audit.0015 (the before-value is the new column's default)",
        )


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0014_event_type_without_choices"),
        ("arm", "0006_apikey_minters"),
    ]

    operations = [migrations.RunPython(append_records, migrations.RunPython.noop)]
