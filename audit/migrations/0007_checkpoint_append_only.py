"""Checkpoints are append-only in the database too (SQLite and PostgreSQL), like change records."""

from django.db import migrations

from arm.dbtriggers import append_only


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_chain_checkpoint")]

    operations = [append_only("audit_chaincheckpoint")]
