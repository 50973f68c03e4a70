"""``manage.py bench --notifications N --drain M``: events reaching a webhook receiver, served as users run
ARM (gunicorn for the API, ``manage.py worker`` processes beside it, a receiver on 127.0.0.1).

The run creates a webhook endpoint subscribed to ``approval.requested`` pointing at ``bench.receiver`` (a
process of its own that verifies every request with the Standard Webhooks reference library and writes
one line per request), and deletes it afterwards, so no other measurement writes events.

1. **Latency.** One worker runs (idle: on PostgreSQL it LISTENs and is woken at each commit, on SQLite it
   polls every ``ARM_WORKER_POLL_SECONDS``). N approvals are requested through gunicorn
   (``POST /api/v1/policy/evaluate/`` answering NEEDS_APPROVAL), one every ``INTERVAL`` seconds. An event's
   latency is its first arrival at the receiver minus the return of the request that opened it (its
   transaction had committed by then; one machine, one wall clock). Goal: p95 <= 1 s.
2. **Drain.** The worker is stopped (SIGTERM), M approvals are opened in process (transactions of 100),
   then one worker is started on the backlog. The rate is M / (last arrival - first arrival); also from the
   worker's start (its start-up included). Afterwards every one of the M events must have arrived, signed,
   and every delivery be ``succeeded``: nothing lost. Goal: >= 1,000 events/s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.test import override_settings

from approvals.services import approval_open
from bench.ops import summarize
from bench.server import HttpSession, free_port, serving_env, terminate
from notifications.choices import DeliveryStatus
from notifications.models import Delivery, Event
from notifications.services import endpoint_create, endpoint_delete
from policies.services import params_hash
from registry.models import AgentInstance
from tenancy.context import Actor

NOTIFY_TOOL = "bench.notify"
EVENT_TYPE = "approval.requested"
INTERVAL = 0.05  # seconds between the latency run's approval requests
WARMUP = 5  # approval requests sent and waited for before the timed ones
BATCH = 100  # approvals per transaction in the drain's backlog
LATENCY_GOAL_MS = 1000
DRAIN_GOAL_PER_S = 1000
WAIT_SECONDS = 120  # how long to wait for every event before reporting what is missing

# What the worker and the endpoint need to call a receiver on 127.0.0.1 over plain HTTP.
OUTBOUND_ENV = {"ARM_OUTBOUND_ALLOW_HTTP": "true", "ARM_OUTBOUND_ALLOW_PRIVATE": "true"}


class Receiver:
    """``bench.receiver`` in its own process; a thread reads its lines: {webhook id: first arrival}."""

    def __init__(self, port: int, secrets: list[str], *, delay_ms: float = 0, fail_first: int = 0):
        env = {**os.environ, "ARM_RECEIVER_SECRETS": " ".join(secrets)}
        command = [sys.executable, "-m", "bench.receiver", "--port", str(port)]
        if delay_ms:
            command += ["--delay-ms", str(delay_ms)]
        if fail_first:
            command += ["--fail-first", str(fail_first)]
        self.process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, text=True)
        self.first: dict[str, float] = {}
        self.requests = 0
        self.unverified = 0
        self.types: dict[str, str] = {}
        self.changed = threading.Condition()
        first_line = json.loads(self.process.stdout.readline() or "{}")
        if first_line.get("port") != port:
            self.stop()
            raise RuntimeError(f"the receiver did not start on port {port}: {first_line}")
        self.port = port
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            row = json.loads(line)
            with self.changed:
                self.requests += 1
                if not row["verified"]:
                    self.unverified += 1
                elif row["status"] < 300:
                    self.first.setdefault(row["id"], row["at"])
                    self.types[row["id"]] = row["type"]
                self.changed.notify_all()

    def wait_for(self, ids: set[str], timeout: float = WAIT_SECONDS) -> set[str]:
        """Wait until every id in ``ids`` has arrived (or ``timeout`` passed); returns those missing."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                missing = ids - self.first.keys()
                left = deadline - time.monotonic()
                if not missing or left <= 0:
                    return missing
                self.changed.wait(min(left, 1.0))

    def wait_for_any(self, ids: set[str], timeout: float = WAIT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not ids & self.first.keys() and time.monotonic() < deadline:
                self.changed.wait(0.5)

    def stop(self) -> None:
        terminate(self.process)


class Worker:
    """``manage.py worker`` as ``make serve`` runs it, with production settings."""

    def __init__(self, database_url: str, *, extra_env: dict | None = None, log_path: str | None = None):
        env = {**serving_env(database_url), **OUTBOUND_ENV, **(extra_env or {})}
        self.log_path = log_path or tempfile.mkstemp(prefix="arm-bench-worker-", suffix=".log")[1]
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.started = time.time()
        self.process = subprocess.Popen(
            [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "worker"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.log.close()

    def stop(self) -> int:
        terminate(self.process)  # SIGTERM: the worker finishes its current item and exits
        self.log.close()
        return self.process.returncode

    def cpu_seconds(self) -> float:
        """User + system CPU time the worker has used so far."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _approval_id(body: dict) -> str | None:
    approval = body.get("approval")
    if isinstance(approval, dict):
        return approval.get("id")
    return approval


def _events_by_approval(tenant, since: datetime) -> dict[str, tuple[str, str]]:
    """{approval id: (webhook id, the event's timestamp)} of the approval.requested events since ``since``."""
    rows = Event.objects.filter(tenant=tenant, type=EVENT_TYPE, created_at__gte=since).values_list("id", "payload")
    return {
        payload["data"]["approval"]["id"]: (f"msg_{pk.hex}", payload["timestamp"])
        for pk, payload in rows.iterator(chunk_size=2000)
    }


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def measure_latency(tenant, api_base: str, runtime_secret: str, instances: list, count: int, receiver) -> dict:
    from django.utils import timezone

    since = timezone.now()
    session = HttpSession(api_base, {"Authorization": f"Bearer {runtime_secret}"})
    returned: dict[str, float] = {}
    run = time.time_ns()
    start = time.monotonic()
    for i in range(count):
        pause = start + i * INTERVAL - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        body = {
            "instance": str(instances[i % len(instances)].pk),
            "tool": "email.send",
            "params": {"to": f"notify-{run}-{i}@example.com"},
        }
        status, content = session.request("POST", "/api/v1/policy/evaluate/", body)
        at = time.time()
        answer = json.loads(content)
        approval = _approval_id(answer) if status == 200 else None
        if approval is None:
            raise RuntimeError(f"notifications: evaluate did not open an approval: {status} {content[:300]!r}")
        returned[str(approval)] = at
    events = _events_by_approval(tenant, since)
    missing_events = set(returned) - set(events)
    ids = {events[a][0] for a in returned if a in events}
    missing = receiver.wait_for(ids)
    after_commit, after_record = [], []
    for approval, at in returned.items():
        if approval not in events or events[approval][0] in missing:
            continue
        webhook_id, stamp = events[approval]
        arrived = receiver.first[webhook_id]
        after_commit.append((arrived - at) * 1000)
        after_record.append((arrived - _timestamp(stamp)) * 1000)
    return {
        "requests": count,
        "interval_s": INTERVAL,
        "events_written": len(events),
        "approvals_without_event": len(missing_events),
        "not_arrived": len(missing),
        "latency_ms": summarize(after_commit) if after_commit else None,
        "max_latency_ms": round(max(after_commit), 1) if after_commit else None,
        "latency_from_record_ms": summarize(after_record) if after_record else None,
    }


def open_backlog(tenant, instances: list, count: int, run: str) -> None:
    """``count`` approvals opened in process (``approval_open``, as an evaluation opens them), BATCH per
    transaction: each writes its APPROVAL_REQUESTED record, and with it an event and a delivery."""
    actor = Actor.system("bench")
    for first in range(0, count, BATCH):
        with transaction.atomic():
            for i in range(first, min(first + BATCH, count)):
                params = {"drain": i, "run": run}
                approval_open(
                    tenant=tenant,
                    instance=instances[i % len(instances)],
                    tool=NOTIFY_TOOL,
                    params=params,
                    params_hash=params_hash(params),
                    risk="high",
                    reasons=[{"code": "needs_approval", "message": "bench notification"}],
                    timeout_seconds=3600,
                    actor=actor,
                )


def measure_drain(tenant, database_url: str, instances: list, count: int, receiver) -> dict:
    from django.utils import timezone

    since = timezone.now()
    started = time.monotonic()
    open_backlog(tenant, instances, count, f"{time.time_ns()}")
    produce_seconds = time.monotonic() - started
    ids = {webhook_id for webhook_id, _ in _events_by_approval(tenant, since).values()}
    worker = Worker(database_url)
    try:
        receiver.wait_for_any(ids)
        cpu_first = worker.cpu_seconds()  # its start-up is behind it
        missing = receiver.wait_for(ids)
        cpu_drain = worker.cpu_seconds() - cpu_first
    finally:
        worker.stop()
    arrivals = sorted(receiver.first[i] for i in ids if i in receiver.first)
    deliveries = Delivery.objects.filter(event__created_at__gte=since, event__tenant=tenant)
    succeeded = deliveries.filter(status=DeliveryStatus.SUCCEEDED).count()
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0
    return {
        "events": count,
        "events_written": len(ids),
        "backlog_seconds": round(produce_seconds, 2),
        "arrived": len(arrivals),
        "not_arrived": len(missing),
        "deliveries_succeeded": succeeded,
        "deliveries": deliveries.count(),
        "seconds_first_to_last": round(span, 3),
        "seconds_from_worker_start": round(arrivals[-1] - worker.started, 3) if arrivals else None,
        "per_second": round(len(arrivals) / span, 1) if span else None,
        "per_second_from_worker_start": round(len(arrivals) / (arrivals[-1] - worker.started), 1) if arrivals else None,
        # on a shared machine the worker may get a fraction of a core: its own CPU time per event says what
        # one core would drain (the database's work is in its own processes)
        "worker_cpu_seconds": round(cpu_drain, 2),
        "per_cpu_second": round(len(arrivals) / cpu_drain) if cpu_drain > 0 else None,
        "no_loss": len(ids) == count and not missing and succeeded == len(ids),
        "worker_log_tail": worker.log_tail() if missing else "",
    }


def run_notifications(*, tenant, api_base: str, database_url: str, runtime_secret: str, count: int, drain: int):
    """Both measurements (the module docstring), with an endpoint and a receiver of their own."""
    instances = list(AgentInstance.objects.filter(tenant=tenant, state="ACTIVE").order_by("name")[:200])
    port = free_port()
    with override_settings(**{name: True for name in OUTBOUND_ENV}):
        endpoint, secret = endpoint_create(
            tenant=tenant,
            actor=Actor.system("bench"),
            name=f"bench receiver {time.time_ns()}",
            kind="webhook",
            url=f"http://127.0.0.1:{port}/",
            event_types=[EVENT_TYPE],
        )
    receiver = Receiver(port, [secret])
    # gunicorn's processes trust what they read of the tenant's endpoints for this long (notifications.outbox):
    # an approval requested sooner would write no event for the new endpoint
    time.sleep(getattr(settings, "ARM_NOTIFICATION_CACHE_SECONDS", 0) + 0.5)
    report: dict = {"receiver_requests": 0}
    try:
        if count:
            worker = Worker(database_url)
            try:
                # warm up: the worker's start, its first connection and the receiver's (not timed)
                measure_latency(tenant, api_base, runtime_secret, instances, WARMUP, receiver)
                report["latency"] = measure_latency(tenant, api_base, runtime_secret, instances, count, receiver)
            finally:
                report["worker_exit"] = worker.stop()
        if drain:
            report["drain"] = measure_drain(tenant, database_url, [i for i in instances], drain, receiver)
        report["receiver_requests"] = receiver.requests
        report["unverified"] = receiver.unverified
    finally:
        receiver.stop()
        endpoint_delete(endpoint=endpoint, actor=Actor.system("bench"))
    return report
