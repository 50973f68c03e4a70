"""Database triggers that make guarantees hold below the ORM (raw SQL included), on SQLite and PostgreSQL.

Used from migrations: ``write_once(table, columns)`` rejects an UPDATE that changes any of ``columns``
and every DELETE; ``append_only(table)`` rejects every UPDATE and DELETE.
"""

from django.db import migrations


def _sqlite_sql(table: str, columns: list[str] | None) -> list[str]:
    statements = []
    if columns:
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in columns)
        statements.append(
            f"CREATE TRIGGER {table}_write_once BEFORE UPDATE ON {table} FOR EACH ROW WHEN {changed} "
            f"BEGIN SELECT RAISE(ABORT, '{table}: {', '.join(columns)} are write-once'); END;"
        )
    else:
        statements.append(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} FOR EACH ROW "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;"
        )
    statements.append(
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} FOR EACH ROW "
        f"BEGIN SELECT RAISE(ABORT, '{table}: rows cannot be deleted'); END;"
    )
    return statements


def _postgres_sql(table: str, columns: list[str] | None) -> list[str]:
    if columns:
        changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in columns)
        update_body = (
            f"IF TG_OP = 'UPDATE' AND NOT ({changed}) THEN RETURN NEW; END IF; "
            f"IF TG_OP = 'UPDATE' THEN RAISE EXCEPTION '{table}: {', '.join(columns)} are write-once'; END IF; "
        )
    else:
        update_body = f"IF TG_OP = 'UPDATE' THEN RAISE EXCEPTION '{table} is append-only'; END IF; "
    return [
        f"CREATE OR REPLACE FUNCTION {table}_guard() RETURNS trigger AS $$ BEGIN {update_body}"
        f"RAISE EXCEPTION '{table}: rows cannot be deleted'; END; $$ LANGUAGE plpgsql;",
        f"CREATE TRIGGER {table}_guard BEFORE UPDATE OR DELETE ON {table} FOR EACH ROW "
        f"EXECUTE FUNCTION {table}_guard();",
    ]


def _drop_sql(vendor: str, table: str, columns: list[str] | None) -> list[str]:
    if vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {table}_guard ON {table};",
            f"DROP FUNCTION IF EXISTS {table}_guard();",
        ]
    names = [f"{table}_write_once" if columns else f"{table}_no_update", f"{table}_no_delete"]
    return [f"DROP TRIGGER IF EXISTS {name};" for name in names]


def trigger_operation(table: str, columns: list[str] | None = None) -> migrations.RunPython:
    def forwards(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        statements = _postgres_sql(table, columns) if vendor == "postgresql" else _sqlite_sql(table, columns)
        for sql in statements:
            schema_editor.execute(sql)

    def backwards(apps, schema_editor):
        for sql in _drop_sql(schema_editor.connection.vendor, table, columns):
            schema_editor.execute(sql)

    return migrations.RunPython(forwards, backwards)


def drop_triggers_sql(vendor: str, table: str, columns: list[str] | None = None) -> list[str]:
    """For tests that simulate an attacker with database access."""
    return _drop_sql(vendor, table, columns)


def write_once(table: str, columns: list[str]) -> migrations.RunPython:
    return trigger_operation(table, columns)


def append_only(table: str) -> migrations.RunPython:
    return trigger_operation(table, None)
