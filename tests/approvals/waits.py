"""The wait server under test: ``approvals.api.wait.WaitServer`` driven through httpx's ASGI transport on an
event loop of the test's own (``asyncio.run``), with its hub installed for that loop.

On PostgreSQL the tests are transactional and the hub's database threads open their own connections, as
in production (decisions are committed by other threads, NOTIFY is real). On SQLite, whose transactional
tests cannot flush the audit tables, the hub runs one database thread that shares the test's connection
and transaction (``shared_connection``), and decisions run on that thread too (``in_db``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from django.core import signals
from django.core.asgi import get_asgi_application
from django.db import close_old_connections, connection, connections

from approvals import waiting
from approvals.api.wait import WaitServer

POSTGRES = connection.vendor == "postgresql"
APP = WaitServer(get_asgi_application())


def wait_url(approval, timeout=None) -> str:
    query = "" if timeout is None else f"?timeout={timeout}"
    return f"/api/v1/approvals/{approval.pk}/wait/{query}"


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


@contextlib.contextmanager
def shared_connection():
    """SQLite: let the hub's one database thread use the test's connection (inside its transaction); what
    a request or the poller would close (``close_old_connections``) stays open, as in tests/ledger/liveserver.py."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    original = waiting.close_old_connections
    waiting.close_old_connections = lambda: None
    conn = connections["default"]
    conn.inc_thread_sharing()
    try:
        yield conn
    finally:
        conn.dec_thread_sharing()
        waiting.close_old_connections = original
        for signal in (signals.request_started, signals.request_finished):
            signal.connect(close_old_connections)


def _use(conn):
    connections["default"] = conn


@contextlib.asynccontextmanager
async def wait_server(*, max_waiters: int = 100, db_threads: int = 4, shared=None):
    """(httpx client, hub) of a wait server on the running loop. ``shared``: the test's connection (SQLite)."""
    executor = ThreadPoolExecutor(1, initializer=_use, initargs=(shared,)) if shared is not None else None
    hub = waiting.WaitHub(max_waiters=max_waiters, db_threads=db_threads, poll_seconds=0.05, executor=executor)
    waiting._hubs[asyncio.get_running_loop()] = hub
    transport = httpx.ASGITransport(app=APP)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=90) as client:
        try:
            yield client, hub
        finally:
            await hub.close()


async def in_db(hub: waiting.WaitHub, func, *args):
    """Run ``func`` against the database from the loop: PostgreSQL, on a thread of its own with its own
    connection, committed and closed (another client); SQLite, on the hub's thread (the test's connection)."""
    if not POSTGRES:
        return await hub.run_sync(func, *args)

    def call():
        try:
            return func(*args)
        finally:
            connections.close_all()

    return await asyncio.to_thread(call)


async def eventually(predicate, *, within: float = 20.0, what: str = "condition") -> None:
    """Poll ``predicate`` on the loop until it holds; the bound only keeps a broken test from hanging."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {within} s")
        await asyncio.sleep(0.01)


def asgi_scope(approval, query: bytes, secret: str) -> dict:
    """A GET of ``approval``'s wait route as a server hands it to ``APP``, for requests no HTTP client sends."""
    path = wait_url(approval)
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {secret}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


def waiters_of(hub: waiting.WaitHub, approval) -> list[waiting.Waiter]:
    return list(hub._waiters.get(approval.pk, ()))
