"""Database-level write-once guarantee for versions: the genome, its hash, template and parent never
change, and versions are never deleted (SQLite and PostgreSQL)."""

from django.db import migrations

from arm.dbtriggers import write_once


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [
        write_once("registry_agentversion", ["genome", "genome_hash", "template_id", "parent_id", "tenant_id"]),
    ]
