"""Each schedule does its job through the service that owns the rule, and writes the change record that
becomes its notification: approval expiry (APPROVAL_EXPIRED at the deadline), the stale-heartbeat sweep
(INSTANCE_HEALTH_CHANGED healthy -> degraded -> stale -> healthy, once per change), the integrity sweep
(TAMPERED: INTEGRITY_FAILED and quarantine), budgets (BUDGET_THRESHOLD_CROSSED, BUDGET_FORECAST_CROSSING
once per period), audit checkpoints (signed, or nothing to sign without a key)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from approvals.choices import ApprovalStatus
from audit.choices import EventType
from audit.models import SignedCheckpoint
from ledger.choices import BudgetPeriod
from registry.choices import Health, InstanceState, IntegrityStatus
from registry.models import AgentInstance
from registry.services import instance_heartbeat
from schedules.models import BudgetForecastNotice, Outcome, Schedule
from schedules.runner import run_schedule
from tenancy.context import Actor
from tests.factories import InstanceFactory, VersionFactory
from tests.helpers import records, tamper_genome
from tests.ledger.factories import BudgetFactory, entry
from tests.policies.factories import make_approval

pytestmark = pytest.mark.django_db


def run(name, now=None):
    result = run_schedule(name, now=now, force=True)
    assert result is not None and result.outcome == Outcome.OK, result
    return result


def test_approval_expiry_writes_expired_at_the_deadline(tenant):
    instance = InstanceFactory(version=VersionFactory(template__tenant=tenant))
    now = timezone.now()
    overdue = make_approval(instance, expires_at=now - timedelta(seconds=1))
    waiting = make_approval(instance, tool="crm.update", expires_at=now + timedelta(minutes=5))
    assert run("approval_expiry", now).message == "Expired 1 approval request(s)."
    overdue.refresh_from_db()
    waiting.refresh_from_db()
    assert overdue.status == ApprovalStatus.EXPIRED and waiting.status == ApprovalStatus.PENDING
    assert len(records(overdue, EventType.APPROVAL_EXPIRED)) == 1


def health_records(instance):
    return [(r.payload["before"], r.payload["after"]) for r in records(instance, EventType.INSTANCE_HEALTH_CHANGED)]


def test_the_stale_heartbeat_sweep_records_each_change_once(tenant):
    window = tenant.heartbeat_window_seconds  # 120 s
    instance = InstanceFactory(version=VersionFactory(template__tenant=tenant), state=InstanceState.ACTIVE)
    silent = InstanceFactory(version=VersionFactory(template__tenant=tenant))  # never beat: nothing to say
    retired = InstanceFactory(version=VersionFactory(template__tenant=tenant), state=InstanceState.RETIRED)
    beat = instance_heartbeat(tenant=tenant, instance_id=instance.pk, actor=Actor.system())
    AgentInstance.objects.filter(pk=retired.pk).update(last_heartbeat_at=beat - timedelta(hours=1))

    run("instance_health", beat + timedelta(seconds=1))
    run("instance_health", beat + timedelta(seconds=window / 2 + 1))  # half the window: beats are missed
    run("instance_health", beat + timedelta(seconds=window / 2 + 2))  # no change: no record
    assert run("instance_health", beat + timedelta(seconds=window + 1)).message == (
        "1 instance(s) changed health: 1 now stale"
    )
    assert health_records(instance) == [("never", "healthy"), ("healthy", "degraded"), ("degraded", "stale")]
    stale = records(instance, EventType.INSTANCE_HEALTH_CHANGED)[-1]
    assert stale.payload["last_heartbeat_at"] == beat.isoformat() and stale.actor == "system"
    # The runtime comes back: the next sweep records the recovery.
    again = instance_heartbeat(tenant=tenant, instance_id=instance.pk, actor=Actor.system())
    run("instance_health", again + timedelta(seconds=1))
    assert health_records(instance)[-1] == ("stale", "healthy")
    instance.refresh_from_db()
    assert instance.recorded_health == Health.HEALTHY
    assert health_records(silent) == [] and health_records(retired) == []


def test_the_sweep_leaves_a_row_a_heartbeat_changed_meanwhile(tenant, monkeypatch):
    """The sweep's UPDATE is conditional on the heartbeat time it read: a heartbeat landing between its
    read and its write wins, and nothing is recorded for the stale reading."""
    from registry import health

    instance = InstanceFactory(version=VersionFactory(template__tenant=tenant), state=InstanceState.ACTIVE)
    old = timezone.now() - timedelta(hours=1)
    AgentInstance.objects.filter(pk=instance.pk).update(last_heartbeat_at=old, recorded_health=Health.HEALTHY)
    original_filter = AgentInstance.objects.filter

    def racing_filter(*args, **kwargs):
        if kwargs.get("recorded_health") == Health.HEALTHY and "last_heartbeat_at" in kwargs:
            instance_heartbeat(tenant=tenant, instance_id=instance.pk, actor=Actor.system())
        return original_filter(*args, **kwargs)

    monkeypatch.setattr(AgentInstance.objects, "filter", racing_filter)
    assert health.instances_health_sweep() == []
    assert health_records(instance) == []


def test_the_integrity_sweep_quarantines_what_is_tampered(tenant):
    version = VersionFactory(template__tenant=tenant)
    live = InstanceFactory(version=version, state=InstanceState.ACTIVE)
    fine = VersionFactory(template__tenant=tenant)
    tamper_genome(version)
    result = run("integrity_sweep")
    assert "1 TAMPERED" in result.message and "2 version(s)" in result.message
    version.refresh_from_db()
    live.refresh_from_db()
    fine.refresh_from_db()
    assert version.integrity_status == IntegrityStatus.TAMPERED and fine.integrity_status == IntegrityStatus.VERIFIED
    assert live.state == InstanceState.QUARANTINED
    assert len(records(version, EventType.INTEGRITY_FAILED)) == 1


def _ingest(operator, instance, key, at, cost):
    response = operator.client.post(
        "/api/v1/usage/", {"entries": [entry(instance, key, at=at, cost_usd=cost)]}, format="json"
    )
    assert response.status_code in (200, 201, 207), response.content


def test_budgets_cross_thresholds_and_forecasts_once_per_period(tenant, operator):
    now = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    if now.day < 3 or now.day > 27:  # keep "two days of history" and "days left" inside one month
        now = now.replace(day=15)
    instance = InstanceFactory(version=VersionFactory(template__tenant=tenant))
    for days_ago in (2, 1):
        _ingest(operator, instance, f"d{days_ago}", (now - timedelta(days=days_ago)).isoformat(), "10")
    # 20 spent, 10 a day: the month ends far above 100, so the forecast crosses before the spend does.
    monthly = BudgetFactory(tenant=tenant, amount_usd=Decimal("100"), thresholds=[10], period=BudgetPeriod.MONTHLY)
    result = run("budget_alerts", now)
    assert result.message == "1 budget threshold(s) crossed, 1 budget(s) forecast to cross this period."
    [crossing] = records(monthly, EventType.BUDGET_FORECAST_CROSSING)
    assert crossing.payload["budget"] == monthly.name and crossing.payload["amount_usd"] == "100.0000"
    assert Decimal(crossing.payload["forecast_usd"]) > 100 and crossing.payload["runout_date"]
    assert len(records(monthly, EventType.BUDGET_THRESHOLD_CROSSED)) == 1  # the 10 % one, raised by the edit
    # Later runs in the same period record nothing new.
    assert run("budget_alerts", now + timedelta(hours=1)).message.startswith("0 budget threshold(s) crossed, 0")
    assert BudgetForecastNotice.objects.filter(budget=monthly).count() == 1


def test_a_budget_already_crossed_or_far_from_its_amount_is_not_forecast_to_cross(tenant, operator):
    now = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    if now.day < 3 or now.day > 27:
        now = now.replace(day=15)
    instance = InstanceFactory(version=VersionFactory(template__tenant=tenant))
    _ingest(operator, instance, "a", (now - timedelta(days=1)).isoformat(), "10")
    BudgetFactory(tenant=tenant, name="spent", amount_usd=Decimal("5"), thresholds=[100])
    BudgetFactory(tenant=tenant, name="roomy", amount_usd=Decimal("100000"), thresholds=[100])
    run("budget_alerts", now)
    assert records(event_type=EventType.BUDGET_FORECAST_CROSSING) == []


def test_audit_checkpoints_are_signed_when_a_key_is_configured(tenant, tmp_path, settings):
    from audit import signing

    settings.ARM_AUDIT_SIGNING_KEY = ""
    settings.ARM_AUDIT_SIGNING_KEY_FILE = ""
    assert run("audit_checkpoint").message.startswith("Nothing signed: no audit signing key")
    key = tmp_path / "audit.pem"
    key.write_bytes(signing.generate_private_key_pem())
    settings.ARM_AUDIT_SIGNING_KEY_FILE = str(key)
    settings.ARM_AUDIT_RETIRED_KEYS_FILE = ""
    with override_settings(ARM_AUDIT_WITNESS_DIR=str(tmp_path / "witness")):
        message = run("audit_checkpoint").message
    assert message.startswith("Signed ") and "1 witness(es)" in message
    assert SignedCheckpoint.objects.filter(tenant=tenant).exists()
    assert list((tmp_path / "witness").rglob("*")), "pushed to the witness directory"


def test_each_run_is_kept_on_its_schedule(tenant):
    run("approval_expiry")
    row = Schedule.objects.get(name="approval_expiry")
    assert row.last_outcome == Outcome.OK and row.last_finished_at and row.running_until is None
    assert Actor.system().ref == "system"
