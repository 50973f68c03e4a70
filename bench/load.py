"""``manage.py bench --load SECONDS``: the fleet mix (``locustfile.py``) against the benchmark's gunicorn,
then a check that nothing the server acknowledged was lost."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from django.utils.dateparse import parse_datetime

from approvals.models import ApprovalRequest
from audit.choices import EventType
from audit.models import ChangeRecord
from audit.services import verify_chain
from policies.models import PolicyDecision
from registry.choices import InstanceState
from registry.models import AgentInstance

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
CHUNK = 900  # ids per IN (...) query (SQLite's variable limit is far above; keeps statements small)


def run_load(
    *,
    base: str,
    tenant,
    seconds: int,
    agents: int,
    runtime_key: str,
    approver_key: str,
    session: str,
    heartbeat_batch: int = 1,
) -> dict:
    instances = [
        str(pk)
        for pk in AgentInstance.objects.filter(tenant=tenant, state=InstanceState.ACTIVE)
        .order_by("name")
        .values_list("pk", flat=True)
    ]
    workdir = Path(tempfile.mkdtemp(prefix="arm-bench-load-"))
    # Few locust users, each pacing a large share of the fleet: locust's own runtime adds latency that grows
    # with its user count (docs/benchmarks.md, "The fleet mix"), which plain gevent or threads with as many
    # clients do not.
    users = max(1, min(10, agents // 1000))
    senders = -(-agents // heartbeat_batch)  # agents, or runtime hosts of heartbeat_batch agents each
    config = {
        "agents": agents,
        "instances": instances,
        "heartbeat_batch": heartbeat_batch,
        "heartbeat_users": min(users, senders),
        "evaluate_users": users,
        "operators": 3,
        "runtime_key": runtime_key,
        "approver_key": approver_key,
        "session": session,
        "run": time.time_ns(),
        "log": str(workdir / "writes.jsonl"),
    }
    (workdir / "config.json").write_text(json.dumps(config))
    total = config["heartbeat_users"] + config["evaluate_users"] + config["operators"]
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        base,
        "--users",
        str(total),
        "--spawn-rate",
        str(max(10, total)),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        "10",
        "--csv",
        str(workdir / "stats"),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    started = datetime.now().astimezone()
    subprocess.run(
        command,
        env={**os.environ, "ARM_BENCH_LOAD_CONFIG": str(workdir / "config.json")},
        check=False,
        timeout=seconds + 120,
    )
    stats = read_stats(workdir / "stats_stats.csv")
    events = [json.loads(line) for line in Path(config["log"]).read_text().splitlines() if line.strip()]
    return {
        "seconds": seconds,
        "agents": agents,
        "heartbeat_batch": heartbeat_batch,
        "locust_users": total,
        "started_at": started.isoformat(),
        "requests": stats,
        "lost_writes": check_writes(tenant, events),
        "workdir": str(workdir),
    }


def read_stats(path: Path) -> dict:
    rows = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            name = row["Name"] if row["Name"] != "Aggregated" else "all"
            rows[name] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": round(float(row["Requests/s"]), 1),
                "p50_ms": _num(row.get("50%")),
                "p95_ms": _num(row.get("95%")),
                "p99_ms": _num(row.get("99%")),
                "max_ms": _num(row.get("Max Response Time")),
            }
    return rows


def _num(value):
    try:
        return round(float(value), 1)
    except (TypeError, ValueError):
        return None


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_writes(tenant, events: list[dict]) -> dict:
    """Everything the server answered 2xx for is in the database:
    - each heartbeat: the instance's ``last_heartbeat_at`` is at least the time it answered;
    - each evaluation: its decision row (by ``decision_id``), in this tenant;
    - each approval an evaluation opened or an operator decided: the approval in the state it was left
      in and its change record (APPROVAL_REQUESTED / APPROVAL_DECIDED);
    - and the tenant's audit chain verifies.
    Returns counts and the list of ``problems`` (empty when nothing was lost)."""
    problems: list[str] = []
    beats: dict[str, datetime] = {}
    for event in events:
        if event["kind"] == "heartbeat":
            at = parse_datetime(event["at"])
            if event["id"] not in beats or at > beats[event["id"]]:
                beats[event["id"]] = at
    for ids in _chunks(list(beats)):
        stored = dict(AgentInstance.objects.filter(tenant=tenant, pk__in=ids).values_list("pk", "last_heartbeat_at"))
        stored = {str(k): v for k, v in stored.items()}
        for pk in ids:
            if stored.get(pk) is None or stored[pk] < beats[pk]:
                problems.append(f"heartbeat of instance {pk} at {beats[pk].isoformat()} is not visible")

    decisions = [e["decision_id"] for e in events if e["kind"] == "evaluate"]
    for ids in _chunks(decisions):
        found = {
            str(pk) for pk in PolicyDecision.objects.filter(tenant=tenant, pk__in=ids).values_list("pk", flat=True)
        }
        problems += [f"decision {pk} was answered but is not stored" for pk in ids if pk not in found]

    requested = {e["approval"] for e in events if e["kind"] == "evaluate" and e["approval"]}
    approved = {e["id"] for e in events if e["kind"] == "approve"}
    for ids in _chunks(sorted(requested | approved)):
        statuses = {
            str(pk): status
            for pk, status in ApprovalRequest.objects.filter(tenant=tenant, pk__in=ids).values_list("pk", "status")
        }
        recorded = set(
            ChangeRecord.objects.filter(
                tenant=tenant,
                target_type="ApprovalRequest",
                target_id__in=ids,
                event_type__in=[EventType.APPROVAL_REQUESTED, EventType.APPROVAL_DECIDED],
            ).values_list("target_id", "event_type")
        )
        for pk in ids:
            if pk not in statuses:
                problems.append(f"approval {pk} was answered but is not stored")
                continue
            if pk in requested and (pk, EventType.APPROVAL_REQUESTED) not in recorded:
                problems.append(f"approval {pk} has no APPROVAL_REQUESTED change record")
            if pk in approved:
                if statuses[pk] not in ("APPROVED",):
                    problems.append(f"approval {pk} was approved but is {statuses[pk]}")
                if (pk, EventType.APPROVAL_DECIDED) not in recorded:
                    problems.append(f"approval {pk} has no APPROVAL_DECIDED change record")

    chain = verify_chain(tenant)
    if not chain.ok:
        problems.append(f"audit chain broken at #{chain.first_broken_seq}: {chain.reason}")
    return {
        "heartbeats": sum(1 for e in events if e["kind"] == "heartbeat"),
        "instances_beaten": len(beats),
        "evaluations": len(decisions),
        "approvals_requested": len(requested),
        "approvals_decided": len(approved),
        "chain_ok": chain.ok,
        "chain_checked": chain.checked,
        "problems": problems[:50],
        "problem_count": len(problems),
        "ok": not problems,
    }
