"""Listeners of appended change records: ``on_record(callback)`` registers ``callback(records)``, called
by ``audit.services.record_change`` / ``record_changes`` after each append with the records just
appended (one tenant's, in chain order), inside the append's transaction: what a listener writes commits
or rolls back with the change. A listener failing fails the change, as the append itself would.

Apps above audit plug in here at startup (``notifications`` writes its outbox), so audit imports none of
them. Data migrations' appends (historical models) call no listener.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Listener = Callable[[Sequence], None]

_listeners: list[Listener] = []


def on_record(callback: Listener) -> Listener:
    """Register ``callback`` (once: registering it again is a no-op); returns it, to use as a decorator."""
    if callback not in _listeners:
        _listeners.append(callback)
    return callback


def emit(records: Sequence) -> None:
    for listener in _listeners:
        listener(records)
