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

from django.db import connections


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
