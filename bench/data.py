"""The benchmark's synthetic tenant, built with bulk inserts (``manage.py bench``).

Everything is valid data: every genome hash is the SHA-256 of its canonical genome, and every row
inserted in bulk has its generic ``<MODEL>_CREATED`` change record, the record a ``save()`` would have
written (``audit.recording.recorded_bulk_create``): one chain extension per batch, hashed in Python with
audit's one hashing rule. The chain is then filled up
to the scale's record count with synthetic history through the same function. Records carry a
timeline in the past, 10 ms apart, in sequence order. The build ends with a full verification of the
chain (which leaves a checkpoint, as a verification in production would)."""

from __future__ import annotations

import itertools
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from audit.choices import EventType
from audit.models import ChainHead
from audit.recording import recorded_bulk_create
from audit.services import ChangeEntry, record_changes, verify_chain
from bench.genomes import bench_version
from policies.models import PolicyAttachment, PolicyEnvelope
from registry.choices import EvalStatus, InstanceState, VersionState
from registry.models import AgentInstance, AgentTemplate, AgentVersion, Environment, Provider
from tenancy.choices import Role
from tenancy.context import Actor
from tenancy.models import ApiKey, Membership, Tenant


@dataclass(frozen=True)
class Scale:
    name: str
    versions: int
    instances: int
    change_records: int
    templates: int


SCALES = {
    "small": Scale("small", versions=1_000, instances=200, change_records=10_000, templates=20),
    "fleet": Scale("fleet", versions=100_000, instances=10_000, change_records=1_000_000, templates=1_000),
}
TENANT_SLUG = "bench"
BATCH = 5_000
# A version's lifecycle state by its index: DRAFT ones feed the transition benchmark, APPROVED ones run
# the instances.
STATE_CYCLE = [VersionState.DRAFT] * 5 + [VersionState.TESTING, VersionState.CANDIDATE] + [VersionState.APPROVED] * 3
EVENTS = [
    EventType.VERSION_CREATED,
    EventType.VERSION_TRANSITIONED,
    EventType.INTEGRITY_VERIFIED,
    EventType.INSTANCE_TRANSITIONED,
    EventType.APPROVAL_DECIDED,
]
PASSWORD = "bench-pass-not-secret"
BENCH_ACTOR = Actor.system("system:bench")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def existing_tenant(scale: Scale) -> Tenant | None:
    """The benchmark tenant if this database already holds one built at ``scale``."""
    tenant = Tenant.objects.filter(slug=TENANT_SLUG).first()
    if tenant is None:
        return None
    if tenant.name != f"Benchmark ({scale.name})":
        raise SystemExit(f"This database holds a benchmark tenant of another scale ({tenant.name}); use another.")
    return tenant


def _timeline(count: int) -> Iterator[datetime]:
    """Record times in the past, 10 ms apart, ending an hour ago at ``count`` records (and going on,
    still in order, if more are written)."""
    base = timezone.now() - timedelta(seconds=count // 100 + 3600)
    return (base + timedelta(milliseconds=10 * n) for n in itertools.count(1))


def _create(rows, clock: Iterator[datetime] | None = None) -> list:
    """Insert ``rows`` (one model) in bulk with their ``<MODEL>_CREATED`` records, timed by ``clock``."""
    return recorded_bulk_create(rows, actor=BENCH_ACTOR, batch_size=1000, times=clock)


def build(scale: Scale) -> Tenant:
    started = time.monotonic()
    clock = _timeline(scale.change_records)
    with transaction.atomic():
        tenant = Tenant(slug=TENANT_SLUG, name=f"Benchmark ({scale.name})")
        _create([tenant], clock)
        templates = _create(
            [
                AgentTemplate(tenant=tenant, name=f"agent-{t:04d}", owners=["bench@example.com"], tags=["bench"])
                for t in range(scale.templates)
            ],
            clock,
        )
        environments = _create(
            [Environment(tenant=tenant, name=tier, tier=tier) for tier in ("dev", "staging", "prod")], clock
        )
        provider = Provider(tenant=tenant, name="fleet-k8s", type="local")
        policy = PolicyEnvelope(
            tenant=tenant,
            name="fleet-standard",
            autonomy_tier=2,
            allowed_tools=["crm.*", "email.*"],
            denied_tools=["shell.*"],
            data_scopes=["crm:*"],
            created_by="system:bench",
            revision=1,
        )
        _create([provider], clock)
        _create([policy], clock)
    log(f"{scale.name}: tenant, {len(templates)} templates")

    approved = []
    for start in range(0, scale.versions, BATCH):
        rows = []
        for i in range(start, min(start + BATCH, scale.versions)):
            state = STATE_CYCLE[i % len(STATE_CYCLE)]
            rows.append(
                bench_version(
                    i,
                    tenant=tenant,
                    template=templates[i % len(templates)],
                    version_label=f"1.{i // len(templates)}.0",
                    lifecycle_state=state,
                    eval_status=EvalStatus.PASS if state != VersionState.DRAFT else EvalStatus.PENDING,
                )
            )
        _create(rows, clock)
        approved += [v for v in rows if v.lifecycle_state == VersionState.APPROVED]
    log(f"{scale.name}: {scale.versions} versions ({time.monotonic() - started:.0f} s)")

    instances = [
        AgentInstance(
            tenant=tenant,
            version=approved[i % len(approved)],
            environment=environments[i % 3],
            provider=provider,
            name=f"agent-{i:05d}",
            # one in fifty retired: heartbeats and the batch endpoint meet them too
            state=InstanceState.RETIRED if i % 50 == 49 else InstanceState.ACTIVE,
            created_by="system:bench",
        )
        for i in range(scale.instances)
    ]
    for start in range(0, len(instances), BATCH):
        _create(instances[start : start + BATCH], clock)
        _create(
            [PolicyAttachment(instance=i, tenant=tenant, policy=policy) for i in instances[start : start + BATCH]],
            clock,
        )
    log(f"{scale.name}: {scale.instances} instances ({time.monotonic() - started:.0f} s)")

    _fill_chain(tenant, scale.change_records, approved, clock)
    log(f"{scale.name}: {scale.change_records} change records ({time.monotonic() - started:.0f} s)")

    with connection.cursor() as cursor:
        # What autovacuum does to freshly bulk-loaded tables in production: statistics, and on PostgreSQL
        # the visibility map too, without which counting the fleet's 100,000 versions cannot be an
        # index-only scan (23-29 ms as a sequential scan instead of 5-7 ms). VACUUM cannot run inside a
        # transaction (a test's): ANALYZE alone there.
        vacuum = connection.vendor == "postgresql" and not connection.in_atomic_block
        cursor.execute("VACUUM (ANALYZE)" if vacuum else "ANALYZE")
    result = verify_chain(tenant, full=True)
    if not result.ok:
        raise SystemExit(f"the benchmark chain does not verify: {result.reason}")
    log(f"{scale.name}: chain verified ({result.checked} records), built in {time.monotonic() - started:.0f} s")
    return tenant


def top_up_drafts(tenant: Tenant, needed: int) -> int:
    """Make sure the tenant holds at least ``needed`` DRAFT versions: every run moves some to TESTING
    (the transition benchmark), so a database reused run after run would run out. Adds the missing ones
    (bulk, with their creation records); returns how many were added."""
    drafts = AgentVersion.objects.filter(tenant=tenant, lifecycle_state=VersionState.DRAFT).count()
    missing = needed - drafts
    if missing <= 0:
        return 0
    templates = list(AgentTemplate.objects.filter(tenant=tenant).order_by("name"))
    first = DRAFT_TOP_UP_BASE + AgentVersion.objects.filter(tenant=tenant).count()
    rows = [
        bench_version(
            i,
            tenant=tenant,
            template=templates[i % len(templates)],
            version_label=f"draft.{i}",
            lifecycle_state=VersionState.DRAFT,
            eval_status=EvalStatus.PENDING,
        )
        for i in range(first, first + missing)
    ]
    _create(rows)
    log(f"added {missing} draft versions for the transition benchmark ({drafts} were left)")
    return missing


# Genome indices of topped-up drafts: clear of the built versions' and of version_create's (10,000,000 + i).
DRAFT_TOP_UP_BASE = 50_000_000


def _fill_chain(tenant: Tenant, count: int, versions: list[AgentVersion], clock: Iterator[datetime]) -> None:
    """Synthetic history after the creation records, until the chain holds ``count`` records."""
    seq = ChainHead.objects.get(tenant_id=tenant.pk).last_seq
    while seq < count:
        entries = []
        for _ in range(min(BATCH, count - seq)):
            seq += 1
            version = versions[seq % len(versions)]
            entries.append(
                ChangeEntry(
                    EVENTS[seq % len(EVENTS)],
                    "AgentVersion",
                    str(version.pk),
                    {"bench": seq, "label": version.version_label},
                    created_at=next(clock),
                )
            )
        record_changes(tenant=tenant, entries=entries, actor=BENCH_ACTOR)


@dataclass
class Credentials:
    operator: str
    approver: str
    runtime: str
    viewer_username: str
    password: str


def credentials(tenant: Tenant) -> Credentials:
    """Fresh keys for this run (their secrets are not stored), and a viewer+operator person for the UI."""

    def key(name, roles):
        full, prefix, key_hash = ApiKey.generate()
        ApiKey.objects.create(
            tenant=tenant, name=name, prefix=prefix, key_hash=key_hash, roles=roles, created_by="system:bench"
        )
        return full

    user_model = get_user_model()
    username = f"bench-{secrets.token_hex(4)}"
    user = user_model.objects.create_user(username=username, password=PASSWORD)
    Membership.objects.create(tenant=tenant, user=user, roles=[Role.VIEWER, Role.OPERATOR])
    return Credentials(
        operator=key(f"bench operator {uuid.uuid4().hex[:6]}", [Role.OPERATOR]),
        approver=key(f"bench approver {uuid.uuid4().hex[:6]}", [Role.APPROVER]),
        runtime=key(f"bench runtime {uuid.uuid4().hex[:6]}", [Role.RUNTIME]),
        viewer_username=username,
        password=PASSWORD,
    )
