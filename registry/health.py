"""Health the registry keeps about its fleet, and the records of its changes: instances by their heartbeats
(the stale-heartbeat sweep) and providers by their health endpoints (the poll's answers). The schedules
app runs both on an interval (``schedules.definitions``); the rules live here and in the models
(``AgentInstance.health``, ``provider_health_verdict``), so the API, the pages and the sweep agree.

Every change is one record on the instance or provider, written in the same transaction as the stored
state it changes, so notifications (issue 25) follow from the records:
INSTANCE_HEALTH_CHANGED {"before", "after", "last_heartbeat_at"} and PROVIDER_HEALTH_CHANGED
{"before", "after", "status_code", "error", "latency_ms"}. Nothing is recorded when nothing changed.

A heartbeat stays one UPDATE with no record (the hot path): an instance that beats again after going
stale is noticed by the next sweep, which records stale -> healthy (instance.recovered) within its
interval."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Case, CharField, F, Q, Value, When
from django.utils import timezone

from audit.choices import EventType
from audit.services import ChangeEntry, record_change, record_changes
from registry.choices import Health, InstanceState, ProviderHealth
from registry.models import AgentInstance, Provider, health_cutoffs
from tenancy.context import Actor
from tenancy.models import Tenant


@dataclass(frozen=True)
class HealthChange:
    """One recorded change: the instance or provider, its health before and after."""

    target_id: str
    tenant_id: object
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _computed_health(now: datetime, window_seconds: int) -> Case:
    """``AgentInstance.health`` as a database expression (the same cutoffs: ``health_cutoffs``)."""
    degraded_before, stale_before = health_cutoffs(now, window_seconds)
    return Case(
        When(last_heartbeat_at__isnull=True, then=Value(Health.NEVER)),
        When(last_heartbeat_at__lt=stale_before, then=Value(Health.STALE)),
        When(last_heartbeat_at__lt=degraded_before, then=Value(Health.DEGRADED)),
        default=Value(Health.HEALTHY),
        output_field=CharField(),
    )


def instances_health_sweep(*, now: datetime | None = None, actor: Actor | None = None) -> list[HealthChange]:
    """Record every instance whose heartbeat health changed since the last sweep (RETIRED ones take no
    heartbeats and are left alone). Per tenant, one read finds only the instances whose health differs
    from ``recorded_health`` (the database computes it with the tenant's window); each is changed by a
    conditional UPDATE on the health and heartbeat time it was read with, so a heartbeat or another
    sweep in between wins and nothing is recorded twice. One chain extension per tenant."""
    now = now or timezone.now()
    actor = actor or Actor.system()
    changes: list[HealthChange] = []
    for tenant in Tenant.objects.only("pk", "heartbeat_window_seconds").order_by("pk"):
        rows = list(
            AgentInstance.objects.filter(tenant=tenant)
            .exclude(state=InstanceState.RETIRED)
            .annotate(health_now=_computed_health(now, tenant.heartbeat_window_seconds))
            .exclude(recorded_health=F("health_now"))
            .values_list("pk", "recorded_health", "health_now", "last_heartbeat_at")
            .order_by("pk")
        )
        if not rows:
            continue
        with transaction.atomic():
            entries = []
            for pk, before, after, last in rows:
                won = AgentInstance.objects.filter(pk=pk, recorded_health=before, last_heartbeat_at=last).update(
                    recorded_health=after
                )
                if not won:
                    continue
                payload = {"before": before, "after": after, "last_heartbeat_at": last.isoformat() if last else None}
                entries.append(ChangeEntry(EventType.INSTANCE_HEALTH_CHANGED, "AgentInstance", str(pk), payload))
                changes.append(HealthChange(str(pk), tenant.pk, before, after))
            record_changes(tenant=tenant, entries=entries, actor=actor)
    return changes


# ---------------------------------------------------------------- providers


@dataclass(frozen=True)
class ProbeAnswer:
    """What one request to a provider's health endpoint got: a status code and (the start of) the body,
    or the error that kept it from an answer (timeout, refused, a URL the outbound rules refuse)."""

    status_code: int | None = None
    body: bytes = b""
    error: str = ""
    latency_ms: int | None = None


def provider_health_verdict(provider: Provider, answer: ProbeAnswer) -> tuple[str, str]:
    """(health, reason): healthy only when the endpoint answered the expected status code and, when the
    provider names one, with the expected text in its body; the reason says what was wrong."""
    if answer.error:
        return ProviderHealth.UNHEALTHY, answer.error
    if answer.status_code != provider.health_expected_status:
        return (
            ProviderHealth.UNHEALTHY,
            f"answered HTTP {answer.status_code}, expected {provider.health_expected_status}",
        )
    expected = provider.health_expected_body
    if expected and expected not in answer.body.decode("utf-8", errors="replace"):
        return ProviderHealth.UNHEALTHY, f"the answer does not contain {expected!r}"
    return ProviderHealth.HEALTHY, ""


def providers_claim_due(*, now: datetime | None = None, limit: int = 100) -> list[Provider]:
    """The providers whose health check is due (an endpoint declared, never checked or its interval
    passed), each claimed by a conditional UPDATE of ``health_next_check_at``: of two pollers, one
    polls it. At most ``limit``, the longest-waiting first."""
    now = now or timezone.now()
    due = (
        Provider.objects.exclude(health_endpoint="")
        .filter(Q(health_next_check_at__isnull=True) | Q(health_next_check_at__lte=now))
        .order_by(F("health_next_check_at").asc(nulls_first=True), "pk")[:limit]
    )
    claimed = []
    for provider in due:
        won = Provider.objects.filter(pk=provider.pk, health_next_check_at=provider.health_next_check_at).update(
            health_next_check_at=now + timedelta(seconds=provider.health_interval_seconds)
        )
        if won:
            claimed.append(provider)
    return claimed


def _record_provider_health(provider: Provider, before: str, after: str, payload_extra: dict, actor: Actor) -> None:
    record_change(
        tenant=provider.tenant,
        event_type=EventType.PROVIDER_HEALTH_CHANGED,
        target=provider,
        payload={"before": before, "after": after, **payload_extra},
        actor=actor,
    )


def provider_health_record(
    *, provider: Provider, answer: ProbeAnswer, now: datetime | None = None, actor: Actor | None = None
) -> HealthChange | None:
    """Store what a poll of ``provider``'s health endpoint found, and record PROVIDER_HEALTH_CHANGED when
    its health changed (with the status code, the error and the latency). The provider's row is locked,
    so a deployment deciding on its health (``registry.services.instance_create``) sees either the
    state before or after. Returns its health before and after the poll (None: the provider is gone)."""
    now = now or timezone.now()
    actor = actor or Actor.system()
    with transaction.atomic():
        provider = Provider.objects.select_for_update().select_related("tenant").filter(pk=provider.pk).first()
        if provider is None:
            return None  # deleted while it was polled
        after, reason = provider_health_verdict(provider, answer)
        before = provider.health_state
        Provider.objects.filter(pk=provider.pk).update(
            health_state=after,
            health_checked_at=now,
            health_status_code=answer.status_code,
            health_latency_ms=answer.latency_ms,
            health_reason=reason[:500],
        )
        if before == after:
            return HealthChange(str(provider.pk), provider.tenant_id, before, after)
        _record_provider_health(
            provider,
            before,
            after,
            {"status_code": answer.status_code, "error": reason[:500], "latency_ms": answer.latency_ms},
            actor,
        )
    return HealthChange(str(provider.pk), provider.tenant_id, before, after)


NO_ENDPOINT = "no health endpoint declared"


def providers_health_forget_undeclared(*, now: datetime | None = None, actor: Actor | None = None) -> int:
    """A provider whose health endpoint was removed has no known health any more: back to unknown (with
    its record), so an old unhealthy verdict no longer refuses deployments to it. Returns how many."""
    now = now or timezone.now()
    actor = actor or Actor.system()
    count = 0
    for provider in Provider.objects.filter(health_endpoint="").exclude(health_state=ProviderHealth.UNKNOWN):
        with transaction.atomic():
            won = Provider.objects.filter(
                pk=provider.pk, health_endpoint="", health_state=provider.health_state
            ).update(
                health_state=ProviderHealth.UNKNOWN,
                health_checked_at=None,
                health_next_check_at=None,
                health_status_code=None,
                health_latency_ms=None,
                health_reason="",
            )
            if won:
                extra = {"status_code": None, "error": NO_ENDPOINT, "latency_ms": None}
                _record_provider_health(provider, provider.health_state, ProviderHealth.UNKNOWN, extra, actor)
                count += 1
    return count


def provider_deploy_error(provider: Provider) -> str | None:
    """Why a new deployment to ``provider`` is refused (None when it is not): its health endpoint last
    answered wrong. Unknown health (never polled, no endpoint) does not refuse."""
    if provider.health_state != ProviderHealth.UNHEALTHY:
        return None
    checked = provider.health_checked_at.strftime("%Y-%m-%d %H:%M:%S UTC") if provider.health_checked_at else "?"
    reason = provider.health_reason or "its health endpoint did not answer as expected"
    return (
        f"Provider {provider.name} is unhealthy ({reason}; checked {checked}). New deployments to it are refused "
        "until its health endpoint answers as expected again."
    )
