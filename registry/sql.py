"""The registry's one hand-written statement: a heartbeat that is its own transaction on PostgreSQL.

A heartbeat is liveness telemetry, superseded by the next one 30 s later, so its commit need not wait
for the WAL flush: after a PostgreSQL crash (not an ARM one) the last ~0.6 s of acknowledged heartbeats
(three ``wal_writer_delay``) may be missing, so an instance looks that much older; nothing is
inconsistent and every other write still waits for its flush. PostgreSQL's documented per-transaction
``synchronous_commit`` (``set_config`` with ``is_local``) does it, so the setting ends with the
heartbeat's transaction; never inside an outer transaction, which may hold audited writes. On SQLite
(WAL, ``synchronous=NORMAL``) no commit waits for an fsync already, and the services use the ORM.
Measured with and without: docs/benchmarks.md.
"""

from __future__ import annotations

import functools
from datetime import datetime

from django.db import connection

from registry.choices import InstanceState
from registry.models import AgentInstance

ASYNC_COMMIT_SQL = "SELECT set_config('synchronous_commit', 'off', true)"


def commits_async() -> bool:
    """Whether a heartbeat about to run is its own transaction on PostgreSQL (autocommit, outside any
    atomic block), and so may commit without waiting for its flush."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block and connection.get_autocommit()


def commit_without_flush_wait() -> None:
    """Inside a heartbeat's own transaction (``commits_async()`` was true before it began): its commit does
    not wait for the WAL flush."""
    with connection.cursor() as cursor:
        cursor.execute(ASYNC_COMMIT_SQL)


def beat(tenant_id, instance_id, now: datetime, status: dict | None) -> int:
    """``AgentInstance.objects.filter(tenant_id=…, pk=…).exclude(state=RETIRED).update(last_heartbeat_at=…,
    heartbeat_status=…)`` as one statement that commits without the flush wait (``commits_async()`` must
    be true): the setting is set from a one-row subquery of the UPDATE itself, not a round trip of its own.
    Values are prepared by the fields, as the ORM's UPDATE would. Returns the number of rows changed."""
    meta = AgentInstance._meta
    last, beat_status, tenant_field, pk_field = (
        meta.get_field(n) for n in ("last_heartbeat_at", "heartbeat_status", "tenant", "id")
    )
    params = [
        last.get_db_prep_save(now, connection),
        beat_status.get_db_prep_save(status, connection),
        tenant_field.get_db_prep_value(tenant_id, connection),
        pk_field.get_db_prep_value(instance_id, connection),
        InstanceState.RETIRED.value,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_beat_sql(), params)
        return cursor.rowcount


@functools.cache
def _beat_sql() -> str:
    meta = AgentInstance._meta
    qn = connection.ops.quote_name
    col = {n: qn(meta.get_field(n).column) for n in ("last_heartbeat_at", "heartbeat_status", "tenant", "id", "state")}
    return (
        f"UPDATE {qn(meta.db_table)} SET {col['last_heartbeat_at']} = %s, {col['heartbeat_status']} = %s "
        f"FROM ({ASYNC_COMMIT_SQL}) AS arm_async_commit "
        f"WHERE {col['tenant']} = %s AND {col['id']} = %s AND NOT ({col['state']} = %s)"
    )
