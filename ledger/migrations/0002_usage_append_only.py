"""The ledger is append-only in the database (SQLite and PostgreSQL): UPDATE and DELETE of a usage
entry raise, whatever path they come from."""

from django.db import migrations

from arm.dbtriggers import append_only


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [append_only("ledger_usageentry")]
