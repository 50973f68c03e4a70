"""Served-process tuning (arm/runtime.py): WAL checkpoints off the request path on SQLite."""

import sqlite3
import threading
import time

import pytest
from django.db import connection
from django.db.backends.signals import connection_created

from arm import runtime


def test_the_checkpointer_copies_the_wal_back_while_writers_never_checkpoint(tmp_path):
    path = str(tmp_path / "arm.sqlite3")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # the request connections' part is not under test here
    writer.execute("CREATE TABLE t (x TEXT)")
    for i in range(200):
        writer.execute("INSERT INTO t VALUES (?)", ("x" * 2000 + str(i),))
    size_before = (tmp_path / "arm.sqlite3").stat().st_size

    stop = threading.Event()
    thread = runtime.start_sqlite_checkpointer(path=path, interval=0.02, stop=stop)
    try:
        assert thread is not None and thread.daemon
        deadline = time.monotonic() + 30  # a liveness bound, not a speed figure
        while (tmp_path / "arm.sqlite3").stat().st_size <= size_before and time.monotonic() < deadline:
            time.sleep(0.02)
        # the rows reached the database file itself, written by nobody but the checkpointer
        assert (tmp_path / "arm.sqlite3").stat().st_size > size_before + 200 * 2000
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as reader:
            assert reader.execute("SELECT count(*) FROM t").fetchone() == (200,)
    finally:
        stop.set()
        connection_created.disconnect(dispatch_uid="arm.runtime.autocheckpoint")
        writer.close()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_served_connections_keep_a_bounded_fallback_autocheckpoint(db):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    runtime._raise_autocheckpoint(sender=None, connection=connection)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone() == (runtime.FALLBACK_AUTOCHECKPOINT_PAGES,)
        cursor.execute("PRAGMA wal_autocheckpoint=1000")


def test_nothing_starts_without_a_file_database_or_with_the_setting_off(settings, tmp_path):
    assert runtime.start_sqlite_checkpointer(path=":memory:", interval=1) is None
    assert runtime.start_sqlite_checkpointer(path=str(tmp_path / "x.sqlite3"), interval=0) is None
    settings.ARM_SQLITE_CHECKPOINT_SECONDS = 0
    assert runtime.start_sqlite_checkpointer(path=str(tmp_path / "x.sqlite3")) is None
    if connection.vendor != "sqlite":
        settings.ARM_SQLITE_CHECKPOINT_SECONDS = 1
        assert runtime.start_sqlite_checkpointer() is None  # PostgreSQL has nothing to checkpoint here
