"""A webhook receiver for the benchmark and the end-to-end tests: ``python -m bench.receiver``.

One asyncio process (keep-alive HTTP/1.1, so it is not what limits a worker's drain rate) that verifies
every request with the Standard Webhooks reference library (``standardwebhooks``) under the secrets given
in ``ARM_RECEIVER_SECRETS`` (space separated ``whsec_…``; a request verifying under none of them is
answered 401 and reported ``"verified": false``), answers 204, and writes one JSON line per request to
stdout, flushed at once: ``{"id": webhook-id, "at": time.time() when the body was read, "type", "data",
"verified", "status"}`` (``data`` only with ``--with-data``). Its first line is ``{"port": N}``.

Receivers deduplicate by ``webhook-id`` (ARM delivers at least once); this one reports every request,
duplicates included, so a test can count both.

``--delay-ms`` holds each answer that long (a slow receiver: a worker killed meanwhile dies mid-delivery);
``--fail-first N``: the first N requests of each webhook id are answered 500 (retries then succeed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY = 4 << 20


class Receiver:
    def __init__(self, secrets: list[str], delay: float, fail_first: int, with_data: bool):
        self.hooks = [Webhook(secret) for secret in secrets]
        self.delay = delay
        self.fail_first = fail_first
        self.with_data = with_data
        self.seen: Counter[str] = Counter()

    def verify(self, body: bytes, headers: dict) -> dict | None:
        for hook in self.hooks:
            try:
                return hook.verify(body, headers)
            except WebhookVerificationError:
                continue
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                if length > MAX_BODY:
                    break
                body = await reader.readexactly(length) if length else b""
                at = time.time()
                status = self.answer(body, headers, at)
                if self.delay:
                    await asyncio.sleep(self.delay)
                close = headers.get("connection", "").lower() == "close"
                writer.write(
                    f"HTTP/1.1 {status} {'No Content' if status == 204 else 'Error'}\r\nContent-Length: 0\r\n"
                    f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n".encode()
                )
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def answer(self, body: bytes, headers: dict, at: float) -> int:
        event = self.verify(body, headers)
        webhook_id = headers.get("webhook-id", "")
        self.seen[webhook_id] += 1
        if event is None:
            status = 401
        elif self.seen[webhook_id] <= self.fail_first:
            status = 500
        else:
            status = 204
        line = {
            "id": webhook_id,
            "at": at,
            "type": (event or {}).get("type"),
            "verified": event is not None,
            "status": status,
        }
        if self.with_data and event is not None:
            line["data"] = event.get("data")
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        return status


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--with-data", action="store_true")
    args = parser.parse_args()
    secrets = os.environ.get("ARM_RECEIVER_SECRETS", "").split()
    if not secrets:
        raise SystemExit("ARM_RECEIVER_SECRETS: the endpoints' signing secrets (whsec_...), space separated")
    receiver = Receiver(secrets, args.delay_ms / 1000, args.fail_first, args.with_data)
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", args.port, backlog=1024)
    sys.stdout.write(json.dumps({"port": server.sockets[0].getsockname()[1]}) + "\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
