"""``manage.py bench``: the lost-write check catches what it must (fast, in the suite), and the whole
benchmark runs end to end at small scale (slow: gunicorn and locust; marked ``bench``, run by .ci/run)."""

import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from audit.models import ChangeRecord
from bench.load import check_writes
from bench.management.commands.bench import Command as BenchCommand
from bench.ops import FLOOR_MULTIPLE, GOALS_MS, LEDGER_BATCH, SINGLE_OBJECT, USAGE_HOST_AGENTS, usage_batch
from policies.models import PolicyDecision
from registry.models import AgentInstance
from tests.policies.factories import make_approval, make_instance


@pytest.fixture
def fleet(tenant, as_actor, operator):
    instance = make_instance(tenant)
    with as_actor(operator.actor, tenant):
        from policies.services import policy_evaluate

        evaluation = policy_evaluate(tenant=tenant, instance_id=instance.pk, tool="crm.lookup")
    beat_at = timezone.now()
    AgentInstance.objects.filter(pk=instance.pk).update(last_heartbeat_at=beat_at)
    events = [
        {"kind": "heartbeat", "id": str(instance.pk), "at": beat_at.isoformat()},
        {"kind": "evaluate", "decision_id": str(evaluation.decision.pk), "decision": "ALLOW", "approval": None},
    ]
    return instance, evaluation.decision, events


def test_the_bench_app_is_installed_only_when_asked_for():
    """Not in a deployment's INSTALLED_APPS; ``manage.py bench`` asks for it (ARM_BENCH, manage.py), and the
    command is then there. The suite runs the command as an instance, without the app."""
    assert "bench" not in settings.INSTALLED_APPS
    env = {name: value for name, value in os.environ.items() if name != "ARM_BENCH"}

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True
        )

    listed = manage("help", "--commands")
    assert listed.returncode == 0 and "bench" not in listed.stdout.split()
    asked = manage("bench", "--help")
    assert asked.returncode == 0 and "--scale" in asked.stdout, asked.stderr


@pytest.mark.django_db
def test_the_check_passes_when_nothing_was_lost(tenant, fleet):
    result = check_writes(tenant, fleet[2])
    assert result["ok"], result["problems"]
    assert (result["heartbeats"], result["evaluations"], result["chain_ok"]) == (1, 1, True)


@pytest.mark.django_db
def test_a_heartbeat_the_database_does_not_show_is_lost(tenant, fleet):
    instance, _, events = fleet
    later = timezone.now() + timedelta(seconds=5)  # answered at a time the row does not carry
    result = check_writes(tenant, [*events, {"kind": "heartbeat", "id": str(instance.pk), "at": later.isoformat()}])
    assert not result["ok"]
    assert any("heartbeat of instance" in p for p in result["problems"])


@pytest.mark.django_db
def test_a_deleted_decision_row_is_lost(tenant, fleet):
    _, decision, events = fleet
    PolicyDecision.objects.filter(pk=decision.pk).delete()
    result = check_writes(tenant, events)
    assert not result["ok"]
    assert result["problems"] == [f"decision {decision.pk} was answered but is not stored"]


@pytest.mark.django_db
def test_an_answered_decision_of_another_id_or_tenant_is_lost(tenant, other_tenant, fleet):
    theirs = make_instance(other_tenant)
    events = [{"kind": "evaluate", "decision_id": str(uuid.uuid4()), "decision": "ALLOW", "approval": None}]
    events.append({"kind": "heartbeat", "id": str(theirs.pk), "at": timezone.now().isoformat()})
    result = check_writes(tenant, events)
    assert result["problem_count"] == 2


@pytest.mark.django_db
def test_an_approval_without_its_change_record_is_lost(tenant, fleet):
    instance, _, _ = fleet
    # Stored directly: its save writes the generic APPROVAL_CREATED, not the service's APPROVAL_REQUESTED.
    approval = make_approval(instance)
    assert not ChangeRecord.objects.filter(target_id=str(approval.pk), event_type="APPROVAL_REQUESTED").exists()
    events = [
        {
            "kind": "evaluate",
            "decision_id": str(fleet[1].pk),
            "decision": "NEEDS_APPROVAL",
            "approval": str(approval.pk),
        },
        {"kind": "approve", "id": str(approval.pk)},
    ]
    problems = check_writes(tenant, events)["problems"]
    assert f"approval {approval.pk} has no APPROVAL_REQUESTED change record" in problems
    assert f"approval {approval.pk} was approved but is PENDING" in problems
    assert f"approval {approval.pk} has no APPROVAL_DECIDED change record" in problems


@pytest.mark.bench
@pytest.mark.skipif(not os.environ.get("ARM_RUN_BENCH_TESTS"), reason="slow: set ARM_RUN_BENCH_TESTS=1 (.ci/run does)")
def test_bench_runs_end_to_end_and_reports_every_operation(tmp_path):
    out = tmp_path / "bench.json"
    call_command(
        BenchCommand(),
        "--scale=small",
        f"--database-url=sqlite:///{tmp_path / 'bench.sqlite3'}",
        "--iterations=5",
        "--warmup=1",
        "--load=8",
        "--agents=300",
        "--waiters=50",
        "--waiters-spread=1",
        "--notifications=10",
        "--drain=100",
        f"--json={out}",
    )
    report = json.loads(out.read_text())
    expected = {
        "floor",
        "audit_list",
        "audit_verify",
        "version_drawer",
        "heartbeat_batch_1000",
        "usage_ingest_1000_spread",
        *GOALS_MS,
    }
    assert expected <= set(report["in_process"]) and expected <= set(report["served"])
    assert all(row["queries"] > 0 for row in report["in_process"].values())
    assert report["scale"]["name"] == "small" and report["workers"] == 1
    assert report["machine"]["cpu_count"] and report["database"]["vendor"] == "sqlite" and report["git_commit"]
    probe = report["commit_probe"]  # the durable-commit probe, timed in the same run
    assert probe["n"] == 100 and probe["p50_ms"] <= probe["p95_ms"] <= probe["p99_ms"]
    load = report["load"]
    assert load["requests"]["heartbeat"]["requests"] > 0 and load["lost_writes"]["ok"], load["lost_writes"]
    assert load["peak_rss_mib_per_worker"]
    # 50 runtimes waited on the wait server at once, each answered "decided" (APPROVED) after its decision,
    # and the operations were measured again while they were held, and after
    waiters = report["waiters"]
    assert waiters["errors"] == 0, waiters["first_errors"]
    assert waiters["held_when_measured"] == waiters["held_at_first_decision"] == 50
    assert waiters["answered"] == waiters["approved"] == 50
    assert waiters["latency_ms"]["n"] == 50 and waiters["wait_server_peak_rss_mib"] > 0
    assert set(report["served_with_waiters"]) == set(report["served_after_waiters"]) == set(report["served"])
    # approval requests reached the local receiver through a worker, signed; a backlog drained without loss
    notifications = report["notifications"]
    assert notifications["unverified"] == 0 and notifications["latency"]["latency_ms"]["n"] == 10
    assert notifications["latency"]["not_arrived"] == 0
    drain = notifications["drain"]
    assert drain["no_loss"] and drain["arrived"] == drain["deliveries_succeeded"] == 100 and drain["per_second"]


@pytest.mark.bench
@pytest.mark.skipif(not os.environ.get("ARM_RUN_BENCH_TESTS"), reason="slow: set ARM_RUN_BENCH_TESTS=1 (.ci/run does)")
def test_the_fleet_mix_can_send_heartbeats_in_batches(tmp_path):
    """--heartbeat-batch N: runtime hosts of N agents beat through the batch endpoint, and every agent's
    heartbeat is checked for in the database afterwards."""
    out = tmp_path / "bench.json"
    call_command(
        BenchCommand(),
        "--scale=small",
        f"--database-url=sqlite:///{tmp_path / 'bench.sqlite3'}",
        "--no-http",
        "--only=floor",
        "--iterations=2",
        "--warmup=1",
        "--load=6",
        "--agents=2000",
        "--heartbeat-batch=40",
        f"--json={out}",
    )
    load = json.loads(out.read_text())["load"]
    assert load["heartbeat_batch"] == 40 and "heartbeat" not in load["requests"]
    batches = load["requests"]["heartbeat batch"]
    assert batches["requests"] > 0 and batches["failures"] == 0, load["requests"]
    lost = load["lost_writes"]
    # each batch names 40 agents' instances (2000 agents over the tenant's 200): more beats than requests
    assert lost["ok"] and lost["heartbeats"] >= 40 * batches["requests"] > 0, lost


def test_the_heartbeat_batch_is_bounded_like_the_endpoint():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="1 to 1000"):
        call_command(BenchCommand(), "--heartbeat-batch=1001")


def test_a_usage_batch_is_one_hosts_agents_and_the_spread_batch_one_call_per_instance():
    instances = [uuid.uuid4() for _ in range(10_000)]

    def used(batch):
        return [entry["instance"] for entry in batch["entries"]]

    first, second = used(usage_batch("t", instances, 0)), used(usage_batch("t", instances, 1))
    assert len(first) == LEDGER_BATCH and len(set(first)) == USAGE_HOST_AGENTS
    assert not set(first) & set(second)  # the next batch is another host's
    spread = used(usage_batch("t", instances, 0, host_agents=LEDGER_BATCH))
    assert len(set(spread)) == LEDGER_BATCH
    keys = [e["idempotency_key"] for b in (0, 1) for e in usage_batch("t", instances, b)["entries"]]
    keys += [e["idempotency_key"] for e in usage_batch("t", instances, 0, host_agents=LEDGER_BATCH)["entries"]]
    assert len(set(keys)) == len(keys)  # a run never retries a batch by accident


def test_only_selects_operations_and_refuses_unknown_names():
    from django.core.management.base import CommandError

    from bench.management.commands.bench import select_operations

    known = ["floor", "heartbeat", "evaluate_allow"]
    assert select_operations("", known) is None
    assert select_operations("heartbeat, evaluate_allow", known) == {"floor", "heartbeat", "evaluate_allow"}
    with pytest.raises(CommandError, match="heartbeet"):
        select_operations("heartbeet", known)


@pytest.mark.django_db
def test_bench_data_records_every_row_it_inserts_in_bulk_and_its_chain_verifies():
    from audit.services import verify_chain
    from bench.data import Scale, build
    from registry.models import AgentTemplate, AgentVersion

    scale = Scale("tiny", versions=40, instances=12, change_records=150, templates=4)
    tenant = build(scale)

    created = ChangeRecord.objects.filter(tenant=tenant, event_type__endswith="_CREATED")
    for model, event in ((AgentVersion, "VERSION_CREATED"), (AgentInstance, "INSTANCE_CREATED")):
        rows = {str(pk) for pk in model.objects.filter(tenant=tenant).values_list("pk", flat=True)}
        assert set(created.filter(event_type=event).values_list("target_id", flat=True)) == rows
    assert created.filter(event_type="TEMPLATE_CREATED").count() == AgentTemplate.objects.filter(tenant=tenant).count()
    first = ChangeRecord.objects.get(tenant=tenant, seq=1)
    assert (first.event_type, first.target_id, first.actor) == ("TENANT_CREATED", str(tenant.pk), "system:bench")
    records = list(ChangeRecord.objects.filter(tenant=tenant).order_by("seq").values_list("seq", "created_at"))
    assert [seq for seq, _ in records] == list(range(1, 151))
    assert all(a[1] < b[1] for a, b in zip(records, records[1:], strict=False))  # a timeline in sequence order
    version = AgentVersion.objects.filter(tenant=tenant).first()
    creation = ChangeRecord.objects.filter(tenant=tenant, target_id=str(version.pk)).order_by("seq").first().payload
    assert creation["after"]["genome_hash"] == version.genome_hash
    assert "genome" not in creation["after"] and creation["values_withheld"] == ["genome"]
    assert verify_chain(tenant, full=True).ok


@pytest.mark.django_db
def test_a_reused_database_gets_the_drafts_the_transition_benchmark_consumes():
    from audit.services import verify_chain
    from bench.data import Scale, build, top_up_drafts
    from registry.choices import VersionState
    from registry.models import AgentVersion

    tenant = build(Scale("tiny", versions=40, instances=12, change_records=150, templates=4))
    drafts = AgentVersion.objects.filter(tenant=tenant, lifecycle_state=VersionState.DRAFT)
    have = drafts.count()
    assert top_up_drafts(tenant, have) == 0  # enough: nothing added
    assert top_up_drafts(tenant, have + 30) == 30
    assert drafts.count() == have + 30
    added = set(drafts.filter(version_label__startswith="draft.").values_list("pk", flat=True))
    created = ChangeRecord.objects.filter(tenant=tenant, event_type="VERSION_CREATED", target_id__in=map(str, added))
    assert len(added) == 30 and created.count() == 30  # each with its creation record
    assert top_up_drafts(tenant, have + 45) == 15  # again, later: new labels and genomes, no collision
    assert verify_chain(tenant, full=True).ok


def _report(served_p95: dict, waiters_p95=None, with_waiters=None) -> dict:
    served = {name: {"p95_ms": p95} for name, p95 in served_p95.items()}
    report = {"in_process": dict.fromkeys(served_p95, {}), "served": served}
    if waiters_p95 is not None:
        report["waiters"] = {"latency_ms": {"p95_ms": waiters_p95}}
    if with_waiters:
        report["served_with_waiters"] = {n: {"p95_ms": p} for n, p in with_waiters.items()}
        report["served_after_waiters"] = {n: served[n] for n in with_waiters}
    return report


def test_the_summary_names_every_figure_over_its_goal_and_says_the_run_does_not_fail():
    from bench.management.commands.bench import WAKE_GOAL_MS, goal_summary

    name = next(n for n in GOALS_MS if n not in SINGLE_OBJECT)  # over its goal only
    goal = GOALS_MS[name]
    single = SINGLE_OBJECT[0]  # within its goal, over 4x a fast floor
    floor = GOALS_MS[single] / (FLOOR_MULTIPLE + 1)
    report = _report(
        {"floor": floor, name: goal + 5, single: GOALS_MS[single]},
        waiters_p95=WAKE_GOAL_MS + 1,
        with_waiters={single: GOALS_MS[single] * 2},
    )
    legend, summary = goal_summary(report)[1:]
    assert "OVER = a served p95 above its goal" in legend and "exit 0" in legend
    assert summary.startswith("4 figures over their goals: ")
    assert f"{name} served p95 ({goal + 5:.1f} ms > {goal} ms)" in summary
    assert f"{single} served p95 ({GOALS_MS[single]:.1f} ms > {FLOOR_MULTIPLE}x the floor's {floor:.1f} ms)" in summary
    assert f"waiters woken p95 ({WAKE_GOAL_MS + 1:.1f} ms > {WAKE_GOAL_MS} ms)" in summary
    assert f"{single} served p95 with waiters" in summary
    assert goal_summary(_report({"floor": 1.0, name: goal}))[-1] == "Every figure is within its goal."


def test_the_notification_goals_are_judged_latency_p95_drain_rate_and_loss():
    from bench.management.commands.bench import goal_summary, notification_counts

    report = _report({"floor": 1.0})
    report["notifications"] = {
        "latency": {"latency_ms": {"p95_ms": 1200.0}},
        "drain": {"per_second": 400.0, "no_loss": False, "arrived": 1999, "events": 2000},
    }
    summary = goal_summary(report)[-1]
    assert summary.startswith("3 figures over their goals: ")
    assert "notification latency p95 (1200 ms > 1000 ms)" in summary
    assert "notification drain (400/s < 1000/s)" in summary and "lost events (1999 of 2000 arrived)" in summary
    report["notifications"] = {
        "latency": {"latency_ms": {"p95_ms": 40.0}},
        "drain": {"per_second": 1500.0, "no_loss": True, "arrived": 2000, "events": 2000},
    }
    assert goal_summary(report)[-1] == "Every figure is within its goal."
    assert notification_counts({"notifications": 5, "drain": 7}) == (5, 7)
    assert notification_counts({"notifications": 5, "drain": 7, "no_notifications": True}) == (0, 0)
    assert notification_counts({"notifications": 5, "drain": 7, "no_http": True}) == (0, 0)
