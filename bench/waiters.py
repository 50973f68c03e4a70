"""``manage.py bench --waiters N``: N runtimes waiting on approvals at once, held by the wait server of the
``make serve`` deployment, each woken when its approval's decision commits.

1. N PENDING approvals are opened in process (``approval_open``, tool ``bench.wait``, requested by the
   run's runtime key, which may read them).
2. The waiting fleet (``bench.waitclient``, a process of its own, one connection per wait) sends N waits to
   the wait server, each with a timeout drawn from 30-60 s, and waits again whenever one answers
   ``timeout`` (as a runtime does; the draw keeps the fleet's re-waits spread out), until the server has
   read every wait and holds them.
3. While they are held, the usual operations are measured again (``run_http``); the command measures them
   once more after the waiters are answered, so the run with waiters sits between two without (on a
   machine whose speed drifts, the two show by how much).
4. The approvals are decided through gunicorn's API (``POST approvals/{id}/approve/``) by four deciders,
   paced evenly over ``--waiters-spread`` seconds. Each waiter's wake-up latency is the time its
   ``decided`` answer arrived minus the time its decision's approve call returned (the commit is done by
   then; both are this machine's wall clock). Also reported from the decision's ``decided_at`` (taken
   before the decision's UPDATE: an upper bound that includes the decision's own commit).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from approvals.services import approval_open
from bench.ops import WAIT_TOOL, summarize
from bench.server import HttpSession
from policies.services import params_hash
from registry.models import AgentInstance
from tenancy.context import Actor
from tenancy.models import ApiKey

TIMEOUTS = (30.0, 60.0)
DECIDERS = 4


def open_approvals(tenant, runtime_secret: str, count: int, run: str) -> list[str]:
    """``count`` PENDING approvals of the run's runtime key (the waiters' key may read its own requests)."""
    key = ApiKey.objects.get(prefix=runtime_secret.split("_")[1])
    actor = Actor.for_key(key)
    instances = list(AgentInstance.objects.filter(tenant=tenant).order_by("name")[:200])
    ids = []
    with transaction.atomic():
        for i in range(count):
            params = {"waiter": i, "run": run}
            approval, _ = approval_open(
                tenant=tenant,
                instance=instances[i % len(instances)],
                tool=WAIT_TOOL,
                params=params,
                params_hash=params_hash(params),
                risk="high",
                reasons=[{"code": "needs_approval", "message": "bench waiter"}],
                timeout_seconds=3600,
                actor=actor,
            )
            ids.append(str(approval.pk))
    return ids


class WaitFleet:
    """The waiting runtimes: ``bench.waitclient`` in a process of its own (its protocol is described there)."""

    def __init__(self, base: str, secret: str, ids: list[str]):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.waitclient"],
            cwd=settings.BASE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._send({"base": base, "secret": secret, "ids": ids, "timeouts": TIMEOUTS})

    def _send(self, message) -> None:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"waiters: the waiting client exited ({self.process.wait()})")
        return json.loads(line)

    def held(self) -> dict:
        """Once every wait is sent and held: {"held", "open_seconds", "errors"}."""
        answer = self._read()
        if answer["errors"]:
            raise RuntimeError(f"waiters: waits failed, first: {answer['errors'][0]}")
        return answer

    def deciding(self) -> None:
        self._send("deciding")

    def results(self, timeout: float) -> dict:
        answer = self._read()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
        return answer

    def cpu_seconds(self) -> float:
        """User + system CPU time the waiting client has used so far: it shares the machine's cores."""
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def decide(base: str, approver_secret: str, ids: list[str], spread: float) -> tuple[dict, float]:
    """Approve every approval through gunicorn, paced evenly over ``spread`` seconds by ``DECIDERS``
    deciders. Returns ({id: (wall clock when the approve call returned, decided_at)}, seconds taken)."""
    committed: dict[str, tuple[float, float]] = {}
    problems: list[str] = []
    start = time.monotonic() + 0.2
    step = spread / max(1, len(ids))

    def decider(share: list[tuple[int, str]]):
        session = HttpSession(base, {"Authorization": f"Bearer {approver_secret}"})
        for index, pk in share:
            pause = start + index * step - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            status, content = session.request("POST", f"/api/v1/approvals/{pk}/approve/", {"note": "bench waiter"})
            returned = time.time()
            if status != 200:
                problems.append(f"{pk}: {status} {content[:200]!r}")
                continue
            decided_at = datetime.fromisoformat(json.loads(content)["decided_at"].replace("Z", "+00:00"))
            committed[pk] = (returned, decided_at.timestamp())

    order = list(enumerate(ids))
    with ThreadPoolExecutor(DECIDERS) as pool:
        list(pool.map(decider, [order[n::DECIDERS] for n in range(DECIDERS)]))
    if problems:
        raise RuntimeError(f"waiters: {len(problems)} decisions failed, first: {problems[0]}")
    return committed, time.monotonic() - start


def database_backends() -> int | None:
    """Connections to the benchmark's database now (PostgreSQL), every process's."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def run_waiters(
    *,
    tenant,
    api_base: str,
    wait_server,
    runtime_secret: str,
    approver_secret: str,
    count: int,
    spread: float,
    while_held,
) -> dict:
    """The whole measurement (see the module docstring); ``while_held()`` runs while every wait is held."""
    ids = open_approvals(tenant, runtime_secret, count, f"{time.time_ns()}")
    backends_before = database_backends()
    cpu_start = wait_server.cpu_seconds()
    fleet = WaitFleet(wait_server.base, runtime_secret, ids)
    try:
        held = fleet.held()
        backends_held = database_backends()
        cpu_held, clock_held = wait_server.cpu_seconds(), time.monotonic()
        client_cpu_held = fleet.cpu_seconds()
        measured = while_held()
        holding_seconds = time.monotonic() - clock_held
        cpu_measured = wait_server.cpu_seconds()
        client_cpu_measured = fleet.cpu_seconds()
        fleet.deciding()
        committed, deciding_seconds = decide(api_base, approver_secret, ids, spread)
        cpu_deciding = wait_server.cpu_seconds() - cpu_measured
        results = fleet.results(timeout=TIMEOUTS[1] + 60)
    finally:
        fleet.stop()
    answered = results["answered"]
    from_return = [(answered[pk] - committed[pk][0]) * 1000 for pk in ids if pk in answered]
    from_decided_at = [(answered[pk] - committed[pk][1]) * 1000 for pk in ids if pk in answered]

    def share_of_a_core(cpu: float, seconds: float) -> float | None:
        return round(100 * cpu / seconds, 1) if seconds else None

    return {
        "count": count,
        "answered": len(answered),
        "approved": sum(1 for status in results["statuses"].values() if status == "APPROVED"),
        "errors": len(results["errors"]),
        "first_errors": results["errors"][:5],
        "held_when_measured": held["held"],
        "held_at_first_decision": results["held_at_first_decision"],
        "fewest_held_while_measuring": results["fewest_held_while_measuring"],
        "open_seconds": held["open_seconds"],
        "rewaits": results["rewaits"],
        "retries_503": results["retries_503"],
        "spread_seconds": spread,
        "deciding_seconds": round(deciding_seconds, 2),
        "decisions_per_s": round(len(committed) / deciding_seconds, 1) if deciding_seconds else None,
        "latency_ms": summarize(from_return) if from_return else None,
        "latency_from_decided_at_ms": summarize(from_decided_at) if from_decided_at else None,
        "max_latency_ms": round(max(from_return), 1) if from_return else None,
        "wait_server_peak_rss_mib": wait_server.peak_rss_mib(),
        "wait_server_cpu_opening_s": round(cpu_held - cpu_start, 2),
        "wait_server_cpu_holding_percent": share_of_a_core(cpu_measured - cpu_held, holding_seconds),
        "wait_server_cpu_deciding_percent": share_of_a_core(cpu_deciding, deciding_seconds),
        # CPU seconds used while the operations were measured with every wait held: the wait server's (its
        # share of a core above) and the waiting client's, which runs on the same cores as everything else
        "cpu_seconds_while_held": {
            "seconds": round(holding_seconds, 1),
            "wait_server": round(cpu_measured - cpu_held, 2),
            "wait_client": round(client_cpu_measured - client_cpu_held, 2),
        },
        "database_connections": {"before": backends_before, "held": backends_held},
        "served_while_held": measured,
    }
