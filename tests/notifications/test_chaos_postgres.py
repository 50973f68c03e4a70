"""Chaos (issue 25, "What it must show"): several ``manage.py worker`` processes deliver while events are
produced, some in transactions that roll back, and workers are SIGKILLed mid-delivery and mid-batch.
Afterwards every committed event reached the receiver at least once, no event of a rolled-back transaction
did, and after deduplication by ``webhook-id`` nothing is missing or doubled.

Deterministic: the receiver holds one request open per round (a gate), the worker that sent it is found
by its connection (``/proc``) and killed while it waits for the answer, with the rest of its batch leased
and unrecorded; then the gate opens and a replacement starts. Every wait is for a condition (no timed
assertion); each has a generous deadline only so that a broken build fails instead of hanging.

PostgreSQL only: the workers and this process share the test database (rows committed, flushed after).
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection, connections, transaction
from standardwebhooks.webhooks import Webhook

from approvals.services import approval_open
from notifications.choices import DeliveryStatus
from notifications.models import Delivery, Event
from tenancy.context import Actor
from tests.notifications.conftest import WorkerProcess
from tests.notifications.factories import EndpointFactory
from tests.policies.factories import make_instance

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (workers share the database)"),
    pytest.mark.django_db(transaction=True),
]

WORKERS = 3
ROUNDS = 3  # each: produce while one worker is killed with a request in flight and its batch leased
PER_ROUND = 60  # transactions per round; every fifth rolls back
DEADLINE = 60.0  # seconds, for conditions that normally hold within milliseconds
WORKER_ENV = {
    # a killed worker's leases run out quickly, and failed attempts are retried quickly
    "ARM_WEBHOOK_LEASE_SECONDS": 2,
    "ARM_WEBHOOK_BACKOFF_BASE_SECONDS": 0.1,
    "ARM_WEBHOOK_BACKOFF_MAX_SECONDS": 0.5,
    "ARM_WEBHOOK_CONCURRENCY": 4,
}


WORKER_ARGS = ("--no-schedules", "--no-tasks", "--batch", "10")


def start_in_background(workers, *args, **env) -> WorkerProcess:
    """One more worker, not waited for (the fixture still kills it at the end)."""
    process = WorkerProcess({**workers.world.env, **{k: str(v) for k, v in env.items()}}, list(args))
    workers.started.append(process)
    return process


def wait_until(condition, what: str, timeout: float = DEADLINE):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


class GatedReceiver:
    """A webhook receiver that records every request (with the client's port) and, when armed, holds the
    next request open until ``release()``; every 9th new webhook id is answered 500 once (a retry)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.armed = threading.Event()
        self.held = threading.Event()
        self.release_gate = threading.Event()
        self.held_request: dict | None = None
        self.failed_once: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                item = {
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                    "port": self.client_address[1],
                }
                status = receiver.answer(item)
                with receiver.lock:
                    receiver.requests.append({**item, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, item: dict) -> int:
        webhook_id = item["headers"].get("webhook-id", "")
        with self.lock:
            hold = self.armed.is_set() and not self.held.is_set()
            if hold:
                self.armed.clear()
                self.held_request = item
            fail = not hold and int(webhook_id[-4:], 16) % 9 == 0 and webhook_id not in self.failed_once
            if fail:
                self.failed_once.add(webhook_id)
        if hold:
            self.held.set()
            self.release_gate.wait(DEADLINE)
            return 200
        return 500 if fail else 204

    def hold_next(self) -> None:
        self.held.clear()
        self.release_gate.clear()
        self.armed.set()

    def release(self) -> None:
        self.release_gate.set()

    def stop(self) -> None:
        self.release_gate.set()
        self.server.shutdown()
        self.server.server_close()


def _socket_inode(local_port: int, remote_port: int) -> str | None:
    """The inode of the TCP socket 127.0.0.1:local_port -> :remote_port (the sender's end)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]  # noqa: SIM115
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == local_port and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                return inode
    return None


def sender_of(item: dict, processes, server_port: int):
    """The worker process whose socket sent ``item`` (found through /proc: its fd pointing at the socket)."""
    inode = _socket_inode(item["port"], server_port)
    assert inode, "the held request's socket is not in /proc/net/tcp"
    for process in processes:
        try:
            fds = os.listdir(f"/proc/{process.process.pid}/fd")
        except FileNotFoundError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{process.process.pid}/fd/{fd}") == f"socket:[{inode}]":
                    return process
            except OSError:
                continue
    return None


class Rollback(Exception):
    pass


def produce(instance, key, start: int, count: int, committed: list, rolled_back: list) -> None:
    """``count`` transactions each opening an approval (its event written with it); every fifth raises
    after its event was written and is rolled back (the event's id is kept to check it never arrives)."""
    actor = Actor.for_key(key)
    try:
        for i in range(start, start + count):
            try:
                with transaction.atomic():
                    approval, _ = approval_open(
                        tenant=instance.tenant,
                        instance=instance,
                        tool="payments.refund",
                        params={"chaos": i},
                        params_hash=f"{i:064x}",
                        risk="high",
                        reasons=[{"code": "needs_approval", "message": "chaos"}],
                        timeout_seconds=3600,
                        actor=actor,
                    )
                    written = [e.webhook_id for e in Event.objects.filter(payload__data__approval__id=str(approval.pk))]
                    assert len(written) == 1
                    if i % 5 == 4:
                        rolled_back.extend(written)
                        raise Rollback
                committed.extend(written)
            except Rollback:
                pass
    finally:
        connections.close_all()


def test_sigkilled_workers_lose_nothing_deliver_nothing_rolled_back_and_dedupe_to_exactly_once(
    tenant, workers, runtime_key
):
    receiver = GatedReceiver()
    endpoint = EndpointFactory(tenant=tenant, url=receiver.url, event_types=["approval.requested"])
    instance = make_instance(tenant)
    committed: list[str] = []
    rolled_back: list[str] = []
    killed: list[str] = []  # webhook ids in flight when their worker was killed
    try:
        live = workers.start(WORKERS, *WORKER_ARGS, **WORKER_ENV)
        for round_ in range(ROUNDS):
            receiver.hold_next()
            producer = threading.Thread(
                target=produce,
                args=(instance, runtime_key[0], round_ * PER_ROUND, PER_ROUND, committed, rolled_back),
            )
            producer.start()
            wait_until(receiver.held.is_set, f"round {round_}: a request to hold")
            held = receiver.held_request
            victim = wait_until(
                lambda held=held, live=live: sender_of(held, live, receiver.port), "the held request's worker"
            )
            # Mid-delivery (the request is unanswered) and mid-batch (its batch is leased, unrecorded).
            assert Delivery.objects.filter(event_id=held["headers"]["webhook-id"][4:], lease_until__isnull=False)
            victim.kill()
            killed.append(held["headers"]["webhook-id"])
            receiver.release()
            # the replacement starts while the others deliver (not waited for: Django's start-up is seconds)
            live = [p for p in live if p is not victim] + [start_in_background(workers, *WORKER_ARGS, **WORKER_ENV)]
            producer.join(DEADLINE)
            assert not producer.is_alive()

        assert len(committed) == ROUNDS * PER_ROUND * 4 // 5 and len(rolled_back) == ROUNDS * PER_ROUND // 5
        wait_until(
            lambda: (
                Delivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.SUCCEEDED).count() == len(committed)
            ),
            "every committed event's delivery to succeed",
        )
        for process in live:
            assert process.wait_started().stop() == 0, process.output  # SIGTERM: a clean stop
    finally:
        receiver.stop()

    verifier = Webhook(endpoint.secret)
    delivered = [r for r in receiver.requests if r["status"] < 300]
    for request in receiver.requests:  # every request, answered or not, is signed by ARM
        assert verifier.verify(request["body"], request["headers"])["type"] == "approval.requested"
    ids = [r["headers"]["webhook-id"] for r in delivered]
    stored = {event.webhook_id for event in Event.objects.filter(tenant=tenant)}
    assert stored == set(committed)  # the database holds exactly the committed transactions' events
    assert set(ids) == set(committed), "after dedupe by webhook-id: every committed event, nothing else"
    assert not set(rolled_back) & {r["headers"]["webhook-id"] for r in receiver.requests}
    duplicates = {i for i in ids if ids.count(i) > 1}
    # at least once: a request answered to a killed worker was sent again once its lease ran out
    assert set(killed) <= duplicates
    assert all(json.loads(r["body"])["data"]["approval"]["status"] == "PENDING" for r in delivered)
