"""The benchmark's waiting fleet: ``python -m bench.waitclient`` (started by ``bench.waiters``), a process of
its own so that its work never shares an interpreter with the client that times the other operations.

It reads its orders as JSON lines on stdin and answers as JSON lines on stdout:

- ``{"base", "secret", "ids", "timeouts": [lo, hi]}``: one wait per approval id, each waiting again after a
  ``timeout`` answer (its timeout drawn from [lo, hi] per request, so re-waits spread out as a fleet's do)
  and after a 503 (once its Retry-After has passed), until its answer says ``decided``. Once every wait is
  written it sends two ``timeout=0`` probes, the second after the first is answered: the server runs first
  reads on its database threads in arrival order, so the second probe's answer means every wait was read
  and is held (a latency threshold instead never passed on a loaded machine). Then it answers
  ``{"held", "open_seconds"}``.
- ``"deciding"``: the decisions start now; it notes how many waits were held then, and the fewest held
  between the first answer and now. When every wait has its answer it writes the results and exits.

A plain HTTP/1.1 client on asyncio streams, one connection per wait: httpx's pool scans all its
connections on every request and response, which with 2,000 of them made the client, not the server,
the slowest part (wake-ups measured in seconds).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from urllib.parse import urlsplit

PROBES = 2  # sequential timeout=0 probes once every wait is written (see the module docstring)


class Fleet:
    def __init__(self, base: str, secret: str, ids: list[str], timeouts: tuple[float, float]):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.head = f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {secret}\r\n"
        self.ids, self.timeouts = ids, timeouts
        self.outstanding = 0
        self.written = 0  # waits whose first request is written
        self.fewest: int | None = None
        self.rewaits = self.retries_503 = 0
        self.errors: list[str] = []
        self.answered: dict[str, float] = {}
        self.statuses: dict[str, str] = {}

    async def request(self, conn, path: str, written=None) -> tuple[int, dict, bytes, tuple]:
        """One GET on ``conn`` (reader, writer), reconnecting when the server closed it; ``written()`` is
        called once the request is written."""
        for attempt in (1, 2):
            if conn is None:
                conn = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
            reader, writer = conn
            try:
                writer.write(f"GET {path} HTTP/1.1\r\n{self.head}\r\n".encode())
                await writer.drain()
                if written is not None:
                    written()
                    written = None
                head = await reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError):
                writer.close()
                conn = None
                if attempt == 2:
                    raise
                continue
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = await self.chunked(reader)
            else:
                body = await reader.readexactly(int(headers.get("content-length", "0")))
            if headers.get("connection", "").lower() == "close":
                writer.close()
                conn = None
            return status, headers, body, conn
        raise RuntimeError("unreachable")

    @staticmethod
    async def chunked(reader) -> bytes:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                return b"".join(part[:-2] for part in parts)

    async def wait(self, pk: str) -> None:
        rng = random.Random(pk)
        conn = None
        first = self._written
        while True:
            self.outstanding += 1
            try:
                path = f"/api/v1/approvals/{pk}/wait/?timeout={rng.uniform(*self.timeouts):.1f}"
                status, headers, body, conn = await self.request(conn, path, first)
                first = None
            except Exception as exc:  # a refused or dropped connection is a finding of the measurement
                self.errors.append(f"{pk}: {type(exc).__name__}: {exc}")
                return
            finally:
                self.outstanding -= 1
            arrived = time.time()
            if self.fewest is not None:
                self.fewest = min(self.fewest, self.outstanding)
            if status == 200 and headers.get("x-arm-wait") == "decided":
                self.answered[pk] = arrived
                self.statuses[pk] = json.loads(body)["status"]
                if conn is not None:
                    conn[1].close()
                return
            if status == 200:
                self.rewaits += 1
            elif status == 503:
                self.retries_503 += 1
                await asyncio.sleep(float(headers.get("retry-after", "1")))
            else:
                self.errors.append(f"{pk}: {status} {body[:200]!r}")
                return

    def _written(self) -> None:
        self.written += 1

    async def held(self) -> float:
        """Seconds until every wait is written, then read and held by the server (``PROBES`` probes, each
        sent once the one before is answered)."""
        started = time.monotonic()
        while self.written < len(self.ids) and not self.errors:
            await asyncio.sleep(0.05)
        conn = None
        for _ in range(PROBES):
            if self.errors:
                break
            status, _, body, conn = await self.request(conn, f"/api/v1/approvals/{self.ids[0]}/wait/?timeout=0")
            if status != 200:
                raise RuntimeError(f"probe: {status} {body[:200]!r}")
        if conn is not None:
            conn[1].close()
        return time.monotonic() - started


def say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def main() -> None:
    loop = asyncio.get_running_loop()
    orders = json.loads(await loop.run_in_executor(None, sys.stdin.readline))
    fleet = Fleet(orders["base"], orders["secret"], orders["ids"], tuple(orders["timeouts"]))
    waits = asyncio.gather(*(fleet.wait(pk) for pk in fleet.ids))
    opened = await fleet.held()
    say({"held": fleet.outstanding, "open_seconds": round(opened, 2), "errors": fleet.errors[:5]})
    fleet.fewest = fleet.outstanding
    await loop.run_in_executor(None, sys.stdin.readline)  # "deciding"
    at_first_decision, fewest = fleet.outstanding, fleet.fewest
    await waits
    say(
        {
            "held_at_first_decision": at_first_decision,
            "fewest_held_while_measuring": fewest,
            "rewaits": fleet.rewaits,
            "retries_503": fleet.retries_503,
            "errors": fleet.errors,
            "answered": fleet.answered,
            "statuses": fleet.statuses,
        }
    )


if __name__ == "__main__":
    asyncio.run(main())
