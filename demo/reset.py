"""``seed_demo --reset``: rebuild the demo from an empty database, without touching the venv.

The demo tenants' rows cannot be deleted on their own: the audit trail and the usage ledger are
append-only, and their database triggers refuse every DELETE (as they must: a reset that could delete
one tenant's history could delete anyone's). So a reset empties the whole database and migrates it again:

- SQLite: the database file (and its -wal/-shm companions) is deleted, then ``migrate`` builds it anew.
- PostgreSQL: the current schema is dropped and created again, then ``migrate``. That deletes every
  tenant in that database, not only the demo's, so it is refused unless ``--yes-delete-everything`` is
  given as well.

The demo runtime file (``demo.keys``) goes with the database: its keys no longer exist.
Stop ``make run`` first: a server still running keeps the old SQLite file open until it reconnects.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections

CONFIRM_FLAG = "--yes-delete-everything"


def reset_database(*, keys_path: Path, delete_everything: bool) -> str:
    """Empty the default database and migrate it; returns what was done, in one line."""
    connection = connections["default"]
    if connection.vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])
        if not name or name == ":memory:" or name.startswith("file:"):
            raise CommandError("--reset needs a SQLite database file (this one is in memory).")
        connections.close_all()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(name + suffix).unlink(missing_ok=True)
        done = f"deleted the SQLite database {name}"
    elif connection.vendor == "postgresql":
        db = connection.settings_dict["NAME"]
        if not delete_everything:
            raise CommandError(
                f"--reset on PostgreSQL empties the whole database {db!r}: every tenant in it, not only the "
                "demo's (the audit trail's triggers refuse deleting one tenant's records). Add "
                f"{CONFIRM_FLAG} to do that."
            )
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            schema = connection.ops.quote_name(cursor.fetchone()[0])
            cursor.execute(f"DROP SCHEMA {schema} CASCADE")
            cursor.execute(f"CREATE SCHEMA {schema}")
        connections.close_all()
        done = f"emptied the PostgreSQL database {db!r} (schema {schema} dropped and created again)"
    else:
        raise CommandError(f"--reset does not know how to empty a {connection.vendor} database.")
    Path(keys_path).unlink(missing_ok=True)
    call_command("migrate", interactive=False, verbosity=0)
    return f"{done}, and migrated it again"
