"""The schedules, defined in code: a name, a default interval and the job it runs. Intervals can be
overridden (or a schedule disabled with 0) by ``ARM_SCHEDULE_INTERVALS`` (docs/configuration.md).

Each job calls the service that owns its rule (one place decides) and returns a one-line summary for the
Schedules page. Summaries hold counts, never a tenant's names: the page is shown to every tenant's admins.
A job that found a problem it must report (a chain that does not extend its checkpoint) raises
``JobProblem``: the run's outcome is ``failed`` with that message."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from tenancy.context import Actor, actor_context
from tenancy.models import Tenant


class JobProblem(Exception):
    """The job ran and found something wrong (its message says what); the run is recorded as failed."""


@dataclass(frozen=True)
class Definition:
    name: str
    title: str
    interval_seconds: int  # the default; ``ARM_SCHEDULE_INTERVALS`` may override it
    job: Callable[[datetime], str]

    @property
    def effective_interval(self) -> int:
        return int(configured_intervals().get(self.name, self.interval_seconds))


def _approval_expiry(now: datetime) -> str:
    from approvals.services import approvals_expire_due

    return f"Expired {approvals_expire_due(now=now)} approval request(s)."


def _instance_health(now: datetime) -> str:
    from registry.health import instances_health_sweep

    changes = instances_health_sweep(now=now)
    if not changes:
        return "No instance changed health."
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.after] = counts.get(change.after, 0) + 1
    return f"{len(changes)} instance(s) changed health: " + ", ".join(
        f"{n} now {state}" for state, n in sorted(counts.items())
    )


def _provider_health(now: datetime) -> str:
    from schedules.polling import poll_due_providers

    return poll_due_providers(now=now).summary()


def _integrity_sweep(now: datetime) -> str:
    from registry.services import integrity_sweep

    system = Actor.system()
    checked = tampered = 0
    tenants = list(Tenant.objects.order_by("slug"))
    for tenant in tenants:
        with actor_context(system, tenant):
            result = integrity_sweep(tenant=tenant, actor=system)
        checked += result.checked
        tampered += len(result.tampered)
    return (
        f"Checked {checked} version(s) in {len(tenants)} tenant(s): {checked - tampered} VERIFIED, {tampered} TAMPERED."
    )


def _budget_alerts(now: datetime) -> str:
    from schedules.budgets import budgets_check_all

    crossed, forecast = budgets_check_all(now=now)
    return f"{crossed} budget threshold(s) crossed, {forecast} budget(s) forecast to cross this period."


def _audit_checkpoint(now: datetime) -> str:
    from audit.keys import configured_keyring
    from audit.services import ChainNotExtended, checkpoint_take
    from audit.witness import WitnessConflict, WitnessError, configured_witnesses

    keyring = configured_keyring()
    if keyring.signer is None:
        return "Nothing signed: no audit signing key is configured (ARM_AUDIT_SIGNING_KEY_FILE)."
    witnesses = configured_witnesses()
    signed = same = 0
    problems: list[str] = []
    for tenant in Tenant.objects.order_by("slug"):
        try:
            taken = checkpoint_take(tenant, keyring=keyring)
        except ChainNotExtended:
            problems.append("a chain does not extend its signed checkpoint (run verify_audit --checkpoints)")
            continue
        signed += taken.created
        same += not taken.created
        document = taken.checkpoint.document(tenant.slug)
        for witness in witnesses:
            try:
                witness.push(document)
            except WitnessConflict:
                problems.append("a witness holds a different checkpoint at the same seq")
            except WitnessError:
                problems.append("a witness could not be written (pushed again next run)")
    summary = f"Signed {signed} checkpoint(s), {same} head(s) unchanged, {len(witnesses)} witness(es)."
    if problems:
        raise JobProblem(summary + " Problems: " + "; ".join(sorted(set(problems))) + ".")
    return summary


#: Every schedule, in the order the page lists them. Defaults: docs/schedules.md says why each.
DEFINITIONS: dict[str, Definition] = {
    d.name: d
    for d in (
        Definition("approval_expiry", "Expire approval requests past their deadline", 10, _approval_expiry),
        Definition("instance_health", "Stale-heartbeat sweep (healthy, degraded, stale)", 30, _instance_health),
        Definition("provider_health", "Poll provider health endpoints", 15, _provider_health),
        Definition("integrity_sweep", "Recompute every version's genome hash", 3600, _integrity_sweep),
        Definition("budget_alerts", "Budget thresholds and forecasts", 300, _budget_alerts),
        Definition("audit_checkpoint", "Sign audit chain heads, push to witnesses", 600, _audit_checkpoint),
    )
}


def configured_intervals() -> dict[str, int]:
    """``ARM_SCHEDULE_INTERVALS`` as {name: seconds}; a name no schedule has, or a negative or non-integer
    interval, is a configuration error (the worker refuses to start rather than run the wrong thing)."""
    raw = getattr(settings, "ARM_SCHEDULE_INTERVALS", "") or ""
    if isinstance(raw, dict):
        items = list(raw.items())
    else:
        items = [part.partition("=")[::2] for part in raw.split(",") if part.strip()]
    intervals = {}
    for name, value in items:
        name = str(name).strip()
        if name not in DEFINITIONS:
            raise ImproperlyConfigured(
                f"ARM_SCHEDULE_INTERVALS names {name!r}, which is not a schedule (one of {', '.join(DEFINITIONS)})."
            )
        try:
            seconds = int(str(value).strip())
        except ValueError:
            seconds = -1
        if seconds < 0:
            raise ImproperlyConfigured(
                f"ARM_SCHEDULE_INTERVALS: {name}={value!r} is not a number of seconds (0 disables)."
            )
        intervals[name] = seconds
    return intervals
