"""The database guard of the usage ledger (``ledger_usageentry``), for migrations.

Append-only, with one exception: an UPDATE that changes only ``cost_usd`` and ``cost_source``, from
``unpriced`` to ``priced``, is let through (``ledger.prices`` reprices an unpriced entry once its
price arrives). Any other UPDATE, and every DELETE, raises, on SQLite and PostgreSQL, whatever path
it comes from. PostgreSQL compares the rows as JSON less those two columns, so a column added later
is guarded without a new migration; SQLite lists the columns (``guard_operation`` reads them from the
migration's model state), and a migration that rebuilds the table on SQLite (a rebuild drops its
triggers) must run ``guard_operation()`` again afterwards.
"""

from django.db import migrations

TABLE = "ledger_usageentry"
REPRICED_COLUMNS = ("cost_usd", "cost_source")
UNPRICED, PRICED = "unpriced", "priced"
UPDATE_REFUSED = f"{TABLE} is append-only: only the cost of an unpriced entry may be set, once"
DELETE_REFUSED = f"{TABLE}: rows cannot be deleted"


def _postgres_sql() -> list[str]:
    rest = " - ".join(f"'{c}'" for c in REPRICED_COLUMNS)
    return [
        f"CREATE OR REPLACE FUNCTION {TABLE}_guard() RETURNS trigger AS $$ BEGIN "
        f"IF TG_OP = 'UPDATE' AND OLD.cost_source = '{UNPRICED}' AND NEW.cost_source = '{PRICED}' "
        f"AND (to_jsonb(NEW) - {rest}) = (to_jsonb(OLD) - {rest}) THEN RETURN NEW; END IF; "
        f"IF TG_OP = 'UPDATE' THEN RAISE EXCEPTION '{UPDATE_REFUSED}'; END IF; "
        f"RAISE EXCEPTION '{DELETE_REFUSED}'; END; $$ LANGUAGE plpgsql;",
        f"DROP TRIGGER IF EXISTS {TABLE}_guard ON {TABLE};",
        f"CREATE TRIGGER {TABLE}_guard BEFORE UPDATE OR DELETE ON {TABLE} FOR EACH ROW "
        f"EXECUTE FUNCTION {TABLE}_guard();",
    ]


def _sqlite_sql(columns: list[str]) -> list[str]:
    same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in columns if c not in REPRICED_COLUMNS)
    allowed = f"OLD.cost_source = '{UNPRICED}' AND NEW.cost_source = '{PRICED}' AND {same}"
    return [
        f"DROP TRIGGER IF EXISTS {TABLE}_no_update;",
        f"DROP TRIGGER IF EXISTS {TABLE}_no_delete;",
        f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE} FOR EACH ROW WHEN NOT ({allowed}) "
        f"BEGIN SELECT RAISE(ABORT, '{UPDATE_REFUSED}'); END;",
        f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE} FOR EACH ROW "
        f"BEGIN SELECT RAISE(ABORT, '{DELETE_REFUSED}'); END;",
    ]


def install_guard(apps, schema_editor) -> None:
    """(Re)create the guard for the table as the migration state has it."""
    if schema_editor.connection.vendor == "postgresql":
        statements = _postgres_sql()
    else:
        model = apps.get_model("ledger", "UsageEntry")
        statements = _sqlite_sql([f.column for f in model._meta.concrete_fields])
    for sql in statements:
        schema_editor.execute(sql)


def guard_operation() -> migrations.RunPython:
    """Install the guard going forward; nothing going back (the migration that installs it decides)."""
    return migrations.RunPython(install_guard, migrations.RunPython.noop)
