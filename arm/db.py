"""Ingestion's bulk statements (``ledger.ingest``) sent past Django's client-side parameter binding.

Django binds parameters on the client with psycopg 3: every value is quoted into the SQL text in Python.
An ingestion batch sends thousands of values as one binary array per column instead (``%b``), which only
a server-side-binding psycopg cursor can send; it runs on Django's own connection and transaction,
database errors are Django's (``wrap_database_errors``), a broken atomic block is refused as Django
refuses it, and the statement is logged like any other (query counts, ``CaptureQueriesContext``). On
SQLite ``execute`` is Django's cursor.
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext

from django.db import connections, transaction


def execute(sql: str, params, *, fetch: bool = True, using: str = "default") -> list | int:
    """Run ``sql`` (``%s`` placeholders, and on PostgreSQL ``%b`` for binary ones) and return its rows when
    ``fetch``, else the number of rows it changed. On PostgreSQL with a server-side-binding psycopg cursor."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if fetch else cursor.rowcount
    import psycopg

    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    started = time.monotonic()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        result = cursor.fetchall() if fetch else cursor.rowcount
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
    return result


@contextmanager
def custom_plans(using: str = "default"):
    """Run the block in a transaction whose statements PostgreSQL plans for their own parameters every
    time (``plan_cache_mode = force_custom_plan``), even when the connection has prepared them
    (``ARM_DB_PREPARED_STATEMENTS``): a generic plan for a cost report's rollup reads, chosen without the
    tenant's and the range's values, made them about twice as slow (docs/configuration.md). Elsewhere
    nothing is changed. The SET is sent on psycopg's connection, so Django's query logs and counts show
    only the report's own queries. Inside a transaction already open, the setting holds until it ends (no
    savepoint: an error in the block must not become the outer transaction's)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=using) if not connection.in_atomic_block else nullcontext():
        connection.ensure_connection()
        with connection.wrap_database_errors:
            connection.connection.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        yield
