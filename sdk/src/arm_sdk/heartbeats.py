"""Heartbeats for a host of many agents: every ``every`` seconds, one batch heartbeat
(``POST /api/v1/instances/heartbeats/``, 1000 instances per request) for all registered instances.

``Heartbeats`` runs in a daemon thread; ``AsyncHeartbeats`` is an asyncio task. Both are stoppable
(``stop()``, or use them as context managers), beat once at start, keep going when ARM does not answer
(logged once per outage, then once when it answers again), and stop beating an instance ARM reports as
retired (logged). Instances can be added and removed while they run.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable

from .client import AsyncClient, Client
from .errors import ArmError

logger = logging.getLogger("arm_sdk.heartbeats")
DEFAULT_EVERY = 30.0  # seconds; ARM calls an instance stale after its tenant's window (default 120 s)


class _Registry:
    def __init__(self, instances: Iterable[str], status: dict | None, every: float) -> None:
        if every <= 0:
            raise ValueError("every is a number of seconds above 0.")
        self.every = every
        self.status = status
        self._ids: dict[str, None] = dict.fromkeys(str(i) for i in instances)
        self._lock = threading.Lock()
        self._failing = False
        self.beats = 0

    def add(self, *instances: str) -> None:
        with self._lock:
            self._ids.update(dict.fromkeys(str(i) for i in instances))

    def remove(self, *instances: str) -> None:
        with self._lock:
            for i in instances:
                self._ids.pop(str(i), None)

    @property
    def instances(self) -> list[str]:
        with self._lock:
            return list(self._ids)

    def _answered(self, answer: dict) -> dict:
        self.beats += 1
        if self._failing:
            logger.info("ARM answers heartbeats again.")
            self._failing = False
        retired = [r["id"] for r in answer.get("results", []) if r.get("result") == "retired"]
        missing = [r["id"] for r in answer.get("results", []) if r.get("result") == "not_found"]
        if retired:
            logger.warning("ARM reports instance(s) %s retired: no more heartbeats for them.", ", ".join(retired))
            self.remove(*retired)
        if missing:
            logger.warning("ARM does not know instance(s) %s (wrong id or tenant).", ", ".join(missing))
        return answer

    def _failed(self, exc: ArmError) -> None:
        if not self._failing:
            logger.warning("Heartbeat failed, will keep trying every %s s: %s", self.every, exc)
            self._failing = True


class Heartbeats(_Registry):
    """``Heartbeats(client, instances, every=30).start()``; ``stop()`` ends the thread."""

    def __init__(self, client: Client, instances: Iterable[str] = (), *, every: float = DEFAULT_EVERY, status=None):
        super().__init__(instances, status, every)
        self.client = client
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> dict | None:
        """One batch heartbeat now, for every registered instance (None when there are none)."""
        ids = self.instances
        if not ids:
            return None
        return self._answered(self.client.heartbeat(ids, status=self.status))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except ArmError as exc:
                self._failed(exc)
            self._stop.wait(self.every)

    def start(self) -> Heartbeats:
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="arm-heartbeats", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Heartbeats:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class AsyncHeartbeats(_Registry):
    """``await AsyncHeartbeats(client, instances).start()``; ``await stop()`` cancels the task."""

    def __init__(
        self, client: AsyncClient, instances: Iterable[str] = (), *, every: float = DEFAULT_EVERY, status=None
    ):
        super().__init__(instances, status, every)
        self.client = client
        self._task: asyncio.Task | None = None

    async def beat(self) -> dict | None:
        ids = self.instances
        if not ids:
            return None
        return self._answered(await self.client.heartbeat(ids, status=self.status))

    async def _loop(self) -> None:
        while True:
            try:
                await self.beat()
            except ArmError as exc:
                self._failed(exc)
            await asyncio.sleep(self.every)

    async def start(self) -> AsyncHeartbeats:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="arm-heartbeats")
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def __aenter__(self) -> AsyncHeartbeats:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()
