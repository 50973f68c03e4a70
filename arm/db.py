"""Statements sent past Django's client-side parameter binding, on Django's own connection (PostgreSQL).

Django binds parameters on the client with psycopg 3: every value is quoted into the SQL text in Python,
and PostgreSQL parses and plans each statement afresh. Two kinds of statement pay for that more than
they should, and go through ``execute`` here instead:

- **the hot paths' statements** (``arm.prepared.PreparedQuery``: the API-key lookup, the evaluated
  instance, the spend counters, the audit head, the pending approval for a call, the version a detail
  read or a transition reads or locks, the approval a decision reads and its requester's key;
  ``PreparedInsert``: the decision row, an approval request, a new version; ``PreparedUpdate``: the
  detail read's integrity status, an approval decision; and the audit append, the heartbeat's UPDATE
  and an ALLOWed call's counter upserts) are *prepared* on each connection the first time it runs them.
  Profiled on PostgreSQL, planning the API-key lookup (three joins and a subquery) and the evaluated
  instance took 0.9-1.1 ms each while they execute in 0.1-0.2 ms. A prepared statement is planned once
  per connection; these statements look one row up by key, so PostgreSQL's generic plan (which it may
  keep after five executions) is the same index lookup. The cost reports are never prepared: for them
  a generic plan was twice as slow (docs/benchmarks.md).
- **ingestion's bulk statements** (``ledger.ingest``) send one binary array per column instead of
  tens of thousands of quoted placeholders.

A prepared statement lives as long as its connection (``ARM_DB_CONN_MAX_AGE``). PostgreSQL re-plans it
by itself after a migration touches its tables; the statements name their columns, so an added column
changes nothing, but one whose type a migration changes makes it fail ("cached plan must not change
result type") until the connection is replaced: restart the workers after such a migration, as a
deploy does anyway.

``ARM_DB_PREPARE_HOT_PATHS=false`` stops the preparing (for a transaction-mode pooler that cannot keep
prepared statements, PgBouncer < 1.21); the statements then run unprepared, still server-side bound.
Whatever the path, the statement runs on Django's connection and transaction, database errors are
Django's (``wrap_database_errors``), a broken atomic block is refused as Django refuses it, and the
statement is logged like any other (query counts, ``CaptureQueriesContext``). On SQLite ``execute`` is
Django's cursor.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connections


def prepares(using: str = "default") -> bool:
    """Whether the hot paths' statements are prepared on this database."""
    return connections[using].vendor == "postgresql" and getattr(settings, "ARM_DB_PREPARE_HOT_PATHS", True)


def execute(sql: str, params, *, fetch: bool = True, prepare: bool = False, using: str = "default") -> list | int:
    """Run ``sql`` (Django's ``%s`` placeholders) and return its rows when ``fetch``, else the number of
    rows it changed. On PostgreSQL with a server-side-binding psycopg cursor, prepared when ``prepare``
    and ``prepares()``."""
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
        cursor.execute(sql, params, prepare=True if prepare and prepares(using) else None)
        result = cursor.fetchall() if fetch else cursor.rowcount
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})
    return result
