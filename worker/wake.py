"""Waking the worker: ``pg_notify('arm_worker')`` in the transaction that made work (PostgreSQL delivers
it at COMMIT, never for a rollback), and the worker's side, ``Waiter``: LISTEN on its own connection on
PostgreSQL, a short sleep on SQLite (no notifications there)."""

from __future__ import annotations

import threading

from django.db import connection

from notifications.outbox import WAKE_CHANNEL, wake_workers


def on_task_enqueued(sender, task_result, **kwargs) -> None:
    wake_workers()


class Waiter:
    """``wait(seconds)`` returns when woken (a commit that made work, on PostgreSQL), when ``stop`` is set,
    or after ``seconds``; ``True`` when woken by a notification."""

    def __init__(self, stop: threading.Event, *, poll_seconds: float):
        self.stop = stop
        self.poll_seconds = poll_seconds
        self.listener = None
        if connection.vendor == "postgresql":
            import psycopg

            # Django's own connection parameters (OPTIONS such as sslmode included), on a connection of its
            # own: LISTEN needs a session that stays idle between notifications.
            params = {
                key: value
                for key, value in connection.get_connection_params().items()
                if key not in ("cursor_factory", "context", "prepare_threshold")
            }
            self.listener = psycopg.connect(**params, autocommit=True, application_name="arm worker (listen)")
            self.listener.execute(f"LISTEN {WAKE_CHANNEL}")

    @property
    def listening(self) -> bool:
        return self.listener is not None

    # A signal (SIGTERM) is handled between two waits, so one wait is never long: stopping takes at most this.
    MAX_WAIT = 1.0

    def wait(self, seconds: float) -> bool:
        if self.stop.is_set() or seconds <= 0:
            return False
        if self.listener is None:
            return self.stop.wait(min(seconds, self.poll_seconds))
        woken = False
        for _ in self.listener.notifies(timeout=min(seconds, self.MAX_WAIT), stop_after=1):
            woken = True
        if woken:  # take the others that came with it: one pass serves them all
            for _ in self.listener.notifies(timeout=0.0):
                pass
        return woken

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
