"""The operations ``manage.py bench`` measures, each run the same way in process (Django's test client)
and over HTTP (``bench.server.HttpSession`` against gunicorn), with the goals they are held to."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import ApprovalRequest
from bench.genomes import bench_genome
from bench.stats import measure, percentile
from registry.choices import InstanceState, VersionState
from registry.models import AgentInstance, AgentTemplate, AgentVersion

# p95 goals in ms, served over HTTP with one gunicorn worker and one sequential client.
GOALS_MS = {
    "heartbeat": 3,
    "evaluate_allow": 5,
    "evaluate_needs_approval": 5,
    "version_detail": 6,
    "version_transition": 8,
    "approval_decision": 8,
    "version_create": 10,
    "version_list_1000": 60,
    "directory_page": 25,
    "costs_report_90d": 150,
    "costs_report_90d_instance": 150,
    "costs_report_90d_tag": 150,
    # The ledger's ingestion goals as batch latencies: >= 5,000 entries/s and >= 2,000 spans/s.
    "usage_ingest_1000": 200,
    "otlp_ingest_1000": 500,
}
# Single-object operations: each served p95 within this multiple of the floor's p95.
SINGLE_OBJECT = (
    "heartbeat",
    "evaluate_allow",
    "evaluate_needs_approval",
    "version_detail",
    "version_transition",
    "approval_decision",
    "version_create",
)
FLOOR_MULTIPLE = 4


@dataclass
class Op:
    name: str
    label: str
    method: str
    auth: str  # operator / approver / runtime / session / none
    request: Callable[[int], tuple[str, dict | None]]  # iteration -> (path, JSON body)
    expect: int = 200
    iterations: float = 1.0  # share of --iterations
    headers: dict = field(default_factory=dict)


# The runs of the operations: in process, served, served again while the wait server holds the waiters
# (``bench.waiters``) and once more after them; each consumes objects of its own (drafts, labels, usage keys).
MODES = ("in_process", "http", "http_waiters", "http_after")
# The tool of the approvals the waiters wait on, which ``approval_decision`` leaves to them.
WAIT_TOOL = "bench.wait"


def drafts_needed(count: int, runs: int = 2) -> int:
    """DRAFT versions ``runs`` runs of ``count`` calls per operation consume (in process, served, ...)."""
    return count * runs + 50


class Pools:
    """Objects the write benchmarks consume, one each per call."""

    def __init__(self, tenant, count: int, runs: int = 2):
        self.tenant = tenant
        self.runs = runs
        self.drafts = list(
            AgentVersion.objects.filter(tenant=tenant, lifecycle_state=VersionState.DRAFT)
            .order_by("-created_at")
            .values_list("pk", flat=True)[: drafts_needed(count, runs)]
        )
        self.instances = list(
            AgentInstance.objects.filter(tenant=tenant, state=InstanceState.ACTIVE)
            .order_by("name")
            .values_list("pk", flat=True)
        )
        self.templates = list(AgentTemplate.objects.filter(tenant=tenant).values_list("pk", flat=True)[:50])
        self.detail = (
            AgentVersion.objects.filter(tenant=tenant)
            .order_by("created_at")
            .values_list("pk", flat=True)[AgentVersion.objects.filter(tenant=tenant).count() // 2]
        )
        self.approvals: list = []
        self.run = time.time_ns()

    def refresh_approvals(self) -> None:
        """PENDING approvals that will not expire during the run (an earlier run's may have: deciding one
        answers 409 ``expired``), newest last (``pop`` takes them first). The NEEDS_APPROVAL evaluations,
        measured before the decisions, open them."""
        fresh = timezone.now() + timedelta(minutes=10)
        self.approvals = list(
            ApprovalRequest.objects.filter(tenant=self.tenant, status="PENDING", expires_at__gt=fresh)
            .exclude(tool=WAIT_TOOL)
            .order_by("requested_at")
            .values_list("pk", flat=True)
        )
        if not self.approvals:
            raise RuntimeError("approval_decision: no pending approval to decide (measure evaluate_needs_approval too)")


LEDGER_BATCH = 1000
# A usage batch is one runtime host's report: 1,000 calls by the agents it runs. The host size is the
# fleet mix's (``--heartbeat-batch``'s documented example): 100 agents, 10 calls each per batch. The
# ``_spread`` variant is the worst case, one call by each of 1,000 distinct instances (a collector
# gateway forwarding the whole fleet), which touches ten times the rollup rows.
USAGE_HOST_AGENTS = 100


def usage_batch(tag: str, instances: list, i: int, *, host_agents: int = USAGE_HOST_AGENTS) -> dict:
    """``POST /api/v1/usage/``: 1000 new entries (keys unique per run and call) by the ``host_agents``
    instances of host ``i`` (consecutive hosts run different instances)."""
    at = "2026-01-15T12:00:00Z"
    first = i * host_agents
    return {
        "entries": [
            {
                "instance": str(instances[(first + n % host_agents) % len(instances)]),
                "occurred_at": at,
                "provider": "openai",
                "model": ("gpt-4.1", "gpt-4.1-mini", "o4-mini")[n % 3],
                "input_tokens": 800 + n,
                "output_tokens": 200,
                "tool_name": "crm.lookup",
                "idempotency_key": f"bench-{tag}-{host_agents}-{i}-{n}",
            }
            for n in range(LEDGER_BATCH)
        ]
    }


def otlp_export(tag: str, instances: list, i: int) -> dict:
    """``POST /otlp/v1/traces`` in the OTLP/JSON encoding (the runners send JSON): one resource per
    instance used, 1000 GenAI chat spans in all, with unique trace and span ids per run and call."""
    import hashlib

    base = int.from_bytes(hashlib.sha256(f"{tag}-{i}".encode()).digest()[:8], "big") & ((1 << 62) - 1)
    per_instance = 100
    resources = []
    for r in range(LEDGER_BATCH // per_instance):
        spans = []
        for n in range(per_instance):
            k = r * per_instance + n
            spans.append(
                {
                    "traceId": f"{base:016x}{r:016x}",
                    "spanId": f"{(base + k) & ((1 << 64) - 1):016x}",
                    "name": "chat gpt-4.1",
                    "kind": 3,
                    "startTimeUnixNano": "1768478399000000000",
                    "endTimeUnixNano": "1768478400000000000",
                    "attributes": [
                        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                        {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4.1"}},
                        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": str(900 + n)}},
                        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "150"}},
                    ],
                }
            )
        instance = str(instances[(i + r) % len(instances)])
        resources.append(
            {
                "resource": {"attributes": [{"key": "arm.instance.id", "value": {"stringValue": instance}}]},
                "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}],
            }
        )
    return {"resourceSpans": resources}


def operations(pools: Pools, mode: str, only: set[str] | None = None) -> list[Op]:
    """Every operation (in the report's order), or those named in ``only``."""
    ops = _operations(pools, mode)
    return ops if only is None else [op for op in ops if op.name in only]


def _operations(pools: Pools, mode: str) -> list[Op]:
    share = len(pools.drafts) // pools.runs
    run = MODES.index(mode)
    drafts = iter(pools.drafts[run * share : (run + 1) * share])
    instances = pools.instances
    tag = f"{'ihwa'[run]}{pools.run}"

    def create(i):
        genome = bench_genome(10_000_000 + i)
        genome["provenance"] = {"bench": f"{tag}-{i}"}
        body = {"template": str(pools.templates[i % len(pools.templates)]), "version_label": f"b.{tag}.{i}"}
        return "/api/v1/versions/", {**body, "genome": genome}

    def approve(i):
        if not pools.approvals:
            pools.refresh_approvals()
        return f"/api/v1/approvals/{pools.approvals.pop()}/approve/", {"note": "bench"}

    def evaluate(tool):
        def request(i):
            params = {"customer_id": i} if tool == "crm.lookup" else {"to": f"{tag}-{i}@example.com"}
            return "/api/v1/policy/evaluate/", {
                "instance": str(instances[i % len(instances)]),
                "tool": tool,
                "params": params,
            }

        return request

    batch = [str(pk) for pk in instances[:1000]]
    today = timezone.now().date()
    since_90d = today - timedelta(days=89)
    hx = {"HX-Request": "true", "HX-Target": "drawer-root"}
    return [
        Op("floor", "GET /api/health/ (the floor)", "get", "none", lambda i: ("/api/health/", None)),
        Op("version_create", "POST versions/ (create)", "post", "operator", create, expect=201),
        Op(
            "version_list_1000",
            "GET versions/?page_size=1000",
            "get",
            "operator",
            lambda i: ("/api/v1/versions/?page_size=1000", None),
            iterations=0.25,
        ),
        Op(
            "version_detail",
            "GET versions/{id}/ (verifies)",
            "get",
            "operator",
            lambda i: (f"/api/v1/versions/{pools.detail}/", None),
        ),
        Op(
            "version_transition",
            "POST versions/{id}/transition/",
            "post",
            "operator",
            lambda i: (f"/api/v1/versions/{next(drafts)}/transition/", {"to": "TESTING", "reason": "bench"}),
        ),
        Op("evaluate_allow", "POST policy/evaluate/ ALLOW", "post", "runtime", evaluate("crm.lookup")),
        Op(
            "evaluate_needs_approval", "POST policy/evaluate/ NEEDS_APPROVAL", "post", "runtime", evaluate("email.send")
        ),
        Op("approval_decision", "POST approvals/{id}/approve/", "post", "approver", approve),
        Op(
            "heartbeat",
            "POST instances/{id}/heartbeat/",
            "post",
            "runtime",
            lambda i: (f"/api/v1/instances/{instances[i % len(instances)]}/heartbeat/", {"status": {"n": i}}),
        ),
        Op(
            "heartbeat_batch_1000",
            "POST instances/heartbeats/ (1000 ids)",
            "post",
            "runtime",
            lambda i: ("/api/v1/instances/heartbeats/", {"instances": batch}),
            iterations=0.25,
        ),
        Op(
            "directory_page",
            "UI directory, 50 rows",
            "get",
            "session",
            lambda i: ("/directory/versions/?page_size=50", None),
        ),
        Op(
            "version_drawer",
            "UI version drawer (verifies)",
            "get",
            "session",
            lambda i: (f"/versions/{pools.detail}/", None),
            headers=hx,
        ),
        Op("audit_list", "GET audit/ (50 newest)", "get", "operator", lambda i: ("/api/v1/audit/", None)),
        Op(
            "costs_report_90d",
            "GET costs/?group_by=template, 90 days per day",
            "get",
            "operator",
            lambda i: (f"/api/v1/costs/?group_by=template&period=day&since={since_90d}&until={today}", None),
            iterations=0.25,
        ),
        Op(
            "costs_report_90d_instance",
            "GET costs/?group_by=instance, 90 days per day",
            "get",
            "operator",
            lambda i: (f"/api/v1/costs/?group_by=instance&period=day&since={since_90d}&until={today}", None),
            iterations=0.25,
        ),
        Op(
            "costs_report_90d_tag",
            "GET costs/?group_by=tag, 90 days per week",
            "get",
            "operator",
            lambda i: (f"/api/v1/costs/?group_by=tag&period=week&since={since_90d}&until={today}", None),
            iterations=0.25,
        ),
        Op(
            "audit_verify",
            "GET audit/verify/ (incremental)",
            "get",
            "operator",
            lambda i: ("/api/v1/audit/verify/", None),
        ),
        Op(
            "usage_ingest_1000",
            "POST usage/ (1000 entries, one host's 100 agents)",
            "post",
            "runtime",
            lambda i: ("/api/v1/usage/", usage_batch(tag, instances, i)),
            iterations=0.25,
        ),
        Op(
            "usage_ingest_1000_spread",
            "POST usage/ (1000 entries, 1000 instances)",
            "post",
            "runtime",
            lambda i: ("/api/v1/usage/", usage_batch(tag, instances, i, host_agents=LEDGER_BATCH)),
            iterations=0.25,
        ),
        Op(
            "otlp_ingest_1000",
            "POST /otlp/v1/traces (1000 GenAI spans, JSON)",
            "post",
            "runtime",
            lambda i: ("/otlp/v1/traces", otlp_export(tag, instances, i)),
            iterations=0.25,
        ),
    ]


def summarize(samples: list[float]) -> dict:
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 50), 3),
        "p95_ms": round(percentile(samples, 95), 3),
        "p99_ms": round(percentile(samples, 99), 3),
        "mean_ms": round(sum(samples) / len(samples), 3),
    }


def _check(op: Op, status: int, body: bytes) -> None:
    if status != op.expect:
        raise RuntimeError(f"{op.name}: expected {op.expect}, got {status}: {body[:300]!r}")


def run_in_process(ops: list[Op], clients: dict[str, Client], iterations: int, warmup: int) -> dict:
    results = {}
    for op in ops:
        client = clients[op.auth]
        headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in op.headers.items()}

        def call(i, op=op, client=client, headers=headers):
            path, body = op.request(i)
            if body is None:
                response = getattr(client, op.method)(path, **headers)
            else:
                response = getattr(client, op.method)(path, body, content_type="application/json", **headers)
            _check(op, response.status_code, response.content)

        n = max(5, int(iterations * op.iterations))
        for i in range(warmup):
            call(i)
        samples = []
        for i in range(warmup, warmup + n):
            start = time.perf_counter()
            call(i)
            samples.append((time.perf_counter() - start) * 1000)
        with CaptureQueriesContext(connection) as ctx:
            call(warmup + n)
        results[op.name] = {**summarize(samples), "queries": len(ctx.captured_queries)}
    return results


def run_http(ops: list[Op], sessions: dict, iterations: int, warmup: int) -> dict:
    results = {}
    for op in ops:
        session = sessions[op.auth]

        def call(i, op=op, session=session):
            path, body = op.request(i)
            status, content = session.request(op.method.upper(), path, body, op.headers or None)
            _check(op, status, content)

        n = max(5, int(iterations * op.iterations))
        for i in range(warmup):
            call(10_000 + i)
        samples = []
        for i in range(10_000 + warmup, 10_000 + warmup + n):
            start = time.perf_counter()
            call(i)
            samples.append((time.perf_counter() - start) * 1000)
        results[op.name] = summarize(samples)
    return results


COMMIT_PROBE_TABLE = "bench_commit_probe"


def measure_commit(iterations: int) -> dict:
    """The durable-commit probe: ``iterations`` transactions, each one UPDATE of the one row of a table of
    the benchmark's own (``bench_commit_probe``, created in the benchmark database when missing), committed
    through this process's connection with raw SQL: no ORM, no HTTP, no audit. Timed in the same run as
    the operations, it is what the database and its disk charge every write for its commit at least (on
    PostgreSQL three round trips: ``BEGIN``, the ``UPDATE``, a ``COMMIT`` that waits for the WAL flush).
    Its p95 and p99 are the disk's stalls, which land on whichever requests commit meanwhile."""
    table = connection.ops.quote_name(COMMIT_PROBE_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {table} (id integer PRIMARY KEY, n bigint NOT NULL)")
        cursor.execute(f"INSERT INTO {table} (id, n) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
    update = f"UPDATE {table} SET n = n + 1 WHERE id = 1"

    def commit():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(update)

    return summarize(measure(commit, iterations, warmup=min(50, iterations)))
