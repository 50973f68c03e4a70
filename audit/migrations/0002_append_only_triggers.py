"""Database-level append-only guarantee for the audit trail (SQLite and PostgreSQL)."""

from django.db import migrations

from arm.dbtriggers import append_only


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [append_only("audit_changerecord")]
