"""Waiting for an approval's decision without polling (``GET /api/v1/approvals/{id}/wait/``).

A wait is answered the moment the request leaves PENDING, or at its timeout with the current state. A
waiting request holds no worker and no database connection: it is an ``asyncio`` coroutine of the wait
server (``approvals.api.wait``, served by uvicorn beside gunicorn: docs/runtime-integration.md), and the
database is touched only before the wait (authenticate, read) and, when woken or at the approval's expiry,
after it (read again), on the process's few database threads (``ARM_WAIT_DB_THREADS``), never by a waiter
while it waits.

How a waiter learns of the decision, one ``WaitHub`` per process (per event loop):

- PostgreSQL: every path that moves a request out of PENDING calls ``notify_decided`` inside its
  transaction, which sends ``NOTIFY arm_approval_decided, '<id>'``; PostgreSQL delivers it when that
  transaction commits, and never for one that rolls back. The hub holds one connection that LISTENs and
  wakes the waiters of each id it hears. After every (re)connection it reads which of the ids being
  waited on were decided meanwhile (one query), so a notification sent while it was not listening
  strands no one; a connection that goes quiet is checked with ``SELECT 1`` every ``HEALTH_SECONDS``.
- SQLite has no NOTIFY: a poller reads which of the ids being waited on are no longer PENDING, one
  query every ``ARM_WAIT_POLL_SECONDS`` (0.1 s) while anyone waits.

A request that reaches its deadline (``expires_at``) while PENDING reads as EXPIRED without a write
(``ApprovalRequest.as_of``): a waiter's deadline is the sooner of its timeout and that moment.

Each process holds at most ``ARM_WAIT_MAX_WAITERS`` waits; one more answers 503 ``too_many_waiters``.

**Re-waits reuse the last read.** A runtime whose wait timed out waits again at once, so 2,000 waiting
runtimes send dozens of waits a second, each of which used to run the API's action (authenticate, read,
serialize: milliseconds of CPU and two queries) only to learn again that the approval is PENDING. The hub
keeps each wait's first read of a PENDING approval (``Read``, per approval and caller) and a next wait of
the same caller holds on it without Django or the database while nothing can have changed it: every change
out of PENDING wakes (``wake`` drops the reads of that id; the listener hears every decision, the poller
reads the ids of kept reads too), a listener or poller that lost track drops them all, the approval's
expiry ends them, and a read is reused for ``REUSE_SECONDS`` at most: a key revoked meanwhile is refused at
its first wait after that (a woken wait always runs the action again, so a decision is never answered to a
caller that is not authenticated again).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
import uuid
import weakref
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import close_old_connections, connection, connections
from django.utils import timezone

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest

logger = logging.getLogger(__name__)

CHANNEL = "arm_approval_decided"
WAIT_HEADER = "X-ARM-Wait"  # decided | timeout
DEFAULT_WAIT_SECONDS = 30
MAX_WAIT_SECONDS = 60
HEALTH_SECONDS = 30.0  # a silent LISTEN connection is checked this often
RECONNECT_SECONDS = (0.5, 5.0)  # first and longest pause between reconnection attempts
LISTENER_NAME = "arm-wait-listener"
CHUNK = 900  # ids per IN (...) (SQLite's default variable limit is far above)
REUSE_SECONDS = 300.0  # a wait's first read answers the same caller's next waits this long at most
PRUNE_SECONDS = 10.0  # reads past REUSE_SECONDS are dropped this often


def notify_decided(approval_id) -> None:
    """Tell the wait servers that ``approval_id`` left PENDING. Call it inside the transaction that moves it:
    PostgreSQL delivers the notification when that transaction commits, never for one that rolls back.
    SQLite has no NOTIFY (the wait servers' pollers read the change instead)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(approval_id)])


def decided_among(ids) -> set[uuid.UUID]:
    """Which of ``ids`` are no longer PENDING (any tenant: this only wakes waiters, whose answers are then
    read through the tenant-scoped API). Runs on a database thread of the wait server, every
    ``ARM_WAIT_POLL_SECONDS`` on SQLite with every id waited on: written as SQL, because building the
    ORM's statement for thousands of ids cost several times what running it does (docs/benchmarks.md)."""
    close_old_connections()  # as a request would: a connection past its age or broken is replaced
    meta = ApprovalRequest._meta
    quote = connection.ops.quote_name
    pk, status = quote(meta.pk.column), quote(meta.get_field("status").column)
    # what UUIDField.get_db_prep_value stores, without its per-value checks: uuid, or its hex on SQLite
    values = list(ids) if connection.features.has_native_uuid_field else [pk_value.hex for pk_value in ids]
    decided: set[uuid.UUID] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(values), CHUNK):
            chunk = values[start : start + CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"SELECT {pk} FROM {quote(meta.db_table)} WHERE {status} <> %s AND {pk} IN ({marks})",
                [ApprovalStatus.PENDING, *chunk],
            )
            decided.update(meta.pk.to_python(row[0]) for row in cursor.fetchall())
    return decided


@dataclass(eq=False)
class Waiter:
    approval_id: uuid.UUID
    event: asyncio.Event = field(default_factory=asyncio.Event)  # set when the approval may have left PENDING
    until: datetime | None = None  # set while it waits (after its first read): when the wait ends at the latest


@dataclass(eq=False)
class Read:
    """A wait's first read of a PENDING approval: its answer (status, headers, body: the answer for a
    timeout), when the approval expires, and when it was read (``time.monotonic``)."""

    answer: tuple
    expires_at: datetime
    at: float


class WaitHub:
    """The waits of one process (one event loop): who waits for which approval, the listener or poller that
    wakes them, and the database threads every wait's reads run on."""

    def __init__(self, *, max_waiters: int, db_threads: int, poll_seconds: float, executor: Executor | None = None):
        self.max_waiters = max_waiters
        self.poll_seconds = poll_seconds
        self._owns_executor = executor is None
        self.db_threads = db_threads
        self.executor = executor or ThreadPoolExecutor(max_workers=db_threads, thread_name_prefix="arm-wait-db")
        self.listening = False  # PostgreSQL: LISTEN is in force
        self._synced = False  # PostgreSQL: LISTEN is in force and what was decided before it has been read
        self._waiters: dict[uuid.UUID, set[Waiter]] = {}
        self._count = 0
        self._held = 0
        self._watcher: asyncio.Task | None = None
        self._reads: dict[uuid.UUID, dict[bytes, Read]] = {}  # approval -> caller -> its last first read
        self._epoch = 0  # bumped whenever a decision may have gone unheard (listener away, poll failed)
        self._pruned = time.monotonic()

    # ------------------------------------------------------------ the waiters

    @property
    def count(self) -> int:
        """Waits in this process: reading, waiting or answering."""
        return self._count

    @property
    def held(self) -> int:
        """Waits waiting now (past their first read, not yet woken or timed out)."""
        return self._held

    async def hold(self, waiter: Waiter, until: datetime) -> None:
        """Wait until ``waiter`` is woken or ``until`` passes (a cancelled wait ends at once)."""
        waiter.until = until
        self._held += 1
        try:
            seconds = max(0.0, (until - timezone.now()).total_seconds())
            try:
                await asyncio.wait_for(waiter.event.wait(), seconds)
            except TimeoutError:
                pass
        finally:
            self._held -= 1

    def register(self, approval_id: uuid.UUID) -> Waiter | None:
        """A waiter for ``approval_id``, or None when the process holds ``max_waiters`` already. Register
        before reading the approval: a decision committed between that read and the wait still wakes it."""
        if self._count >= self.max_waiters:
            return None
        waiter = Waiter(approval_id)
        self._waiters.setdefault(approval_id, set()).add(waiter)
        self._count += 1
        self._ensure_watching()
        return waiter

    def unregister(self, waiter: Waiter) -> None:
        group = self._waiters.get(waiter.approval_id)
        if group is None or waiter not in group:
            return
        group.discard(waiter)
        self._count -= 1
        if not group:
            del self._waiters[waiter.approval_id]

    def wake(self, approval_id: uuid.UUID) -> int:
        """Wake every waiter of ``approval_id`` and drop its kept reads; returns how many woke."""
        self._reads.pop(approval_id, None)
        group = self._waiters.get(approval_id, ())
        for waiter in group:
            waiter.event.set()
        return len(group)

    @property
    def in_sync(self) -> bool:
        """Would a decision committed by now have woken its waiters (but for one in flight)? The poller
        (SQLite) reads them every round; the listener (PostgreSQL) only while it listens, once it has read
        what was decided before."""
        if connections["default"].vendor != "postgresql":
            return True
        return self.listening and self._synced

    def waited_ids(self) -> list[uuid.UUID]:
        """The approvals waited on, and those whose reads are kept (a decision must drop them)."""
        return list(self._waiters.keys() | self._reads.keys())

    # ------------------------------------------------------------ reads kept for the next wait

    @property
    def hears_decisions(self) -> bool:
        """Will every decision committed from now on wake its waiters and drop its reads? PostgreSQL: while
        LISTEN is in force (what was decided before is for a read started now to see); SQLite: the poller
        reads every kept id."""
        if connections["default"].vendor != "postgresql":
            return True
        return self.listening

    def read_token(self) -> int | None:
        """Take it as a first read begins (on its database thread: two plain attribute reads): ``remember``
        keeps the read only with a token, and only if no decision went unheard since (the epoch)."""
        return self._epoch if self.hears_decisions else None

    def remember(self, waiter: Waiter, caller: bytes, answer: tuple, expires_at: datetime, token: int | None) -> bool:
        """Keep ``answer``, ``waiter``'s first read (its approval PENDING), for ``caller``'s next waits. Only
        when nothing can have changed it unheard: decisions heard since before the read began (``token``) and
        no wake-up since ``waiter`` registered (before the read). Returns whether it was kept."""
        if token is None or token != self._epoch or waiter.event.is_set() or not self.hears_decisions:
            return False
        self._prune()
        if len(self._reads) >= self.max_waiters and waiter.approval_id not in self._reads:
            return False  # bounded memory: beyond it, waits read as before
        self._reads.setdefault(waiter.approval_id, {})[caller] = Read(answer, expires_at, time.monotonic())
        return True

    def recall(self, approval_id: uuid.UUID, caller: bytes, now: datetime) -> Read | None:
        """``caller``'s kept read of ``approval_id``, if it still stands at ``now``."""
        read = self._reads.get(approval_id, {}).get(caller)
        if read is None or not self.hears_decisions or now >= read.expires_at:
            return None
        if time.monotonic() - read.at >= REUSE_SECONDS:
            return None
        return read

    def forget_reads(self) -> None:
        """A decision may have gone unheard: no kept read stands."""
        self._epoch += 1
        self._reads.clear()

    def _prune(self) -> None:
        clock = time.monotonic()
        if clock - self._pruned < PRUNE_SECONDS:
            return
        self._pruned = clock
        for approval_id in list(self._reads):
            reads = self._reads[approval_id]
            for caller in [caller for caller, read in reads.items() if clock - read.at >= REUSE_SECONDS]:
                del reads[caller]
            if not reads:
                del self._reads[approval_id]

    async def run_sync(self, func, *args):
        """``func(*args)`` on one of the database threads, in a copy of the caller's context (nothing a
        request binds there outlives it)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, contextvars.copy_context().run, func, *args)

    async def recheck(self) -> int:
        """Wake the waiters of every approval decided meanwhile (one query); returns how many woke."""
        ids = self.waited_ids()
        if not ids:
            return 0
        return sum(self.wake(pk) for pk in await self.run_sync(decided_among, ids))

    # ------------------------------------------------------------ the listener (PostgreSQL) or poller (SQLite)

    def _ensure_watching(self) -> None:
        if self._watcher is not None and not self._watcher.done():
            return
        watch = self._listen if connections["default"].vendor == "postgresql" else self._poll
        self._watcher = asyncio.get_running_loop().create_task(watch(), name="arm-wait-watcher")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.recheck()
            except Exception:  # the database is away: the next round tries again
                self.forget_reads()
                logger.warning("approval wait poller: reading decided approvals failed", exc_info=True)

    async def _listen(self) -> None:
        import psycopg

        params = listen_params()
        pause = RECONNECT_SECONDS[0]
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(**params, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening = True
                    pause = RECONNECT_SECONDS[0]
                    await self.recheck()  # what was decided while no one listened
                    self._synced = True
                    while True:
                        async for notify in conn.notifies(timeout=HEALTH_SECONDS):
                            self._wake_payload(notify.payload)
                        await conn.execute("SELECT 1")  # quiet for a while: is it still there?
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("approval wait listener: connection lost, reconnecting in %.1f s", pause, exc_info=True)
            self.listening = self._synced = False
            self.forget_reads()
            await asyncio.sleep(pause)
            pause = min(pause * 2, RECONNECT_SECONDS[1])

    def _wake_payload(self, payload: str) -> None:
        try:
            approval_id = uuid.UUID(payload)
        except ValueError:
            logger.warning("approval wait listener: ignoring notification %r", payload[:100])
            return
        self.wake(approval_id)

    async def close(self) -> None:
        """Stop the listener or poller and the database threads (the server is shutting down)."""
        if self._watcher is not None:
            self._watcher.cancel()
            try:
                await self._watcher
            except (asyncio.CancelledError, Exception):
                pass
        if self._owns_executor:
            # Each database thread closes its connection after the work queued before: one task per thread,
            # held at a barrier until every thread has one, so no thread takes two.
            barrier = threading.Barrier(self.db_threads)
            closing = [self.executor.submit(_close_connections, barrier) for _ in range(self.db_threads)]
            await asyncio.wait([asyncio.wrap_future(f) for f in closing], timeout=10)
        self.executor.shutdown(wait=False, cancel_futures=True)


def _close_connections(barrier: threading.Barrier) -> None:
    try:
        connections.close_all()
    finally:
        try:
            barrier.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass


def listen_params() -> dict:
    """psycopg connection parameters of the default database, for the LISTEN connection (Django's own
    cursor class and adapters are for its synchronous connections)."""
    params = connections["default"].get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    params.setdefault("application_name", LISTENER_NAME)  # names it in pg_stat_activity
    return params


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WaitHub] = weakref.WeakKeyDictionary()


def hub(*, create: bool = True) -> WaitHub | None:
    """The running event loop's hub (one per process as uvicorn runs it; tests may run several loops)."""
    loop = asyncio.get_running_loop()
    current = _hubs.get(loop)
    if current is None and create:
        current = _hubs[loop] = WaitHub(
            max_waiters=settings.ARM_WAIT_MAX_WAITERS,
            db_threads=settings.ARM_WAIT_DB_THREADS,
            poll_seconds=settings.ARM_WAIT_POLL_SECONDS,
        )
    return current
