"""The event catalogue: every type an endpoint may subscribe to, where it comes from, and how its
payload is built.

Events come from change records (``notifications.outbox``): a record whose ``event_type`` is a source of
one of the types below is given to that type's builder, which answers the event's ``data`` (or None: this
record is not that event, e.g. an instance transition into any state but QUARANTINED). Builders read the
record (and, when a record does not carry enough, the row it names); they run only when the tenant has an
active endpoint subscribed to the type, inside the record's transaction.

Every type also has an ``example`` (its ``data`` as a receiver sees it), used by docs/notifications.md
and by tests that check the documentation matches the builders' keys. Owners of the producers add their
types here (one ``EventSpec`` each): see issue 25's contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.urls import reverse


@dataclass(frozen=True)
class EventSpec:
    """One event type: ``type`` (dotted, Standard Webhooks style), what it means (``title``), the change
    records it comes from (``sources``: record event names), ``build(record) -> data | None`` and an
    ``example`` of its data."""

    type: str
    title: str
    sources: tuple[str, ...]
    build: Callable[[Any], dict | None]
    example: dict = field(default_factory=dict)
    #: ``matches(record) -> bool`` from the record alone (no query), for a source that is this event only
    #: sometimes (an instance transition into QUARANTINED): the outbox asks it before reading endpoints.
    matches: Callable[[Any], bool] | None = None


TEST_EVENT = "arm.test"

#: The types an endpoint may subscribe to (issue 25), in the order the UI and the docs list them. A type
#: whose producer has not registered its builder yet is subscribable but never sent.
EVENT_TYPES: tuple[str, ...] = (
    "approval.requested",
    "approval.decided",
    "approval.expired",
    "approval.withdrawn",
    "version.tampered",
    "instance.stale",
    "instance.recovered",
    "instance.quarantined",
    "budget.threshold_crossed",
    "budget.forecast_to_cross",
    "provider.unhealthy",
    "provider.recovered",
    "evaluation.requested",
)
SUBSCRIBABLE = frozenset(EVENT_TYPES)

#: Every event type in the catalogue, in the order documented; filled by ``register`` below.
CATALOGUE: dict[str, EventSpec] = {}
#: {record event name: the specs it may become}
BY_SOURCE: dict[str, list[EventSpec]] = {}


def register(spec: EventSpec) -> EventSpec:
    CATALOGUE[spec.type] = spec
    for source in spec.sources:
        BY_SOURCE.setdefault(source, []).append(spec)
    return spec


def public_url(path: str) -> str:
    """An absolute link into ARM for a receiver or an email (``ARM_PUBLIC_URL`` + ``path``)."""
    return settings.ARM_PUBLIC_URL.rstrip("/") + path


def _when(value) -> str | None:
    """A datetime (or the ISO text a record carries) as ISO 8601 text."""
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


# ---------------------------------------------------------------- links receivers and emails follow


def approval_link(approval_id) -> str:
    """Where a person decides the request (the Approval center, focused on it)."""
    return public_url(f"{reverse('ui:approvals')}?approval={approval_id}")


def version_link(version_id) -> str:
    return public_url(reverse("ui:version_detail", args=[version_id]))


def instance_link(instance_id) -> str:
    return public_url(reverse("ui:instance_detail", args=[instance_id]))


def cost_link() -> str:
    return public_url(reverse("ui:cost"))


# ---------------------------------------------------------------- approvals


def _approval_data(record) -> dict | None:
    from approvals.models import ApprovalRequest

    approval = ApprovalRequest.objects.select_related("instance").filter(pk=record.target_id).first()
    if approval is None:
        return None
    instance = approval.instance
    return {
        # The call's params are not sent (they may be large or personal); params_hash binds them.
        "approval": {
            "id": str(approval.pk),
            "status": approval.status,
            "tool": approval.tool,
            "params_hash": approval.params_hash,
            "risk": approval.risk,
            "reasons": approval.reasons,
            "data_scopes": approval.data_scopes,
            "estimated_cost_usd": None if approval.estimated_cost_usd is None else str(approval.estimated_cost_usd),
            "requester": approval.requester,
            "requested_at": _when(approval.requested_at),
            "expires_at": _when(approval.expires_at),
            "decided_by": approval.decided_by or None,
            "decided_at": _when(approval.decided_at),
            "note": approval.note,
        },
        "instance": {"id": str(instance.pk), "name": instance.name},
        "url": approval_link(approval.pk),
    }


_APPROVAL_EXAMPLE = {
    "approval": {
        "id": "5b0e2a54-3f7c-4a5e-9b1e-0c2d7f9a6e11",
        "status": "PENDING",
        "tool": "payments.refund",
        "params_hash": "3f1c9b0e5d2a47c88e1f6a9b2c4d7e0f3a5b8c1d4e7f0a2b5c8d1e4f7a0b3c6d",
        "risk": "high",
        "reasons": ["tool payments.refund is high risk: needs approval at autonomy tier 1"],
        "data_scopes": ["payments:write"],
        "estimated_cost_usd": "0.0120",
        "requester": "key:c1b3d4e5 (runtime)",
        "requested_at": "2026-12-07T21:40:12.345678+00:00",
        "expires_at": "2026-12-07T22:40:12.345678+00:00",
        "decided_by": None,
        "decided_at": None,
        "note": "",
    },
    "instance": {"id": "0a7d5c1e-9f3b-4e2a-8c6d-1b0e9f8a7c6d", "name": "support-bot-prod-1"},
    "url": "https://arm.example.com/approvals/?approval=5b0e2a54-3f7c-4a5e-9b1e-0c2d7f9a6e11",
}


def _example_approval(status: str, decided_by: str | None = None) -> dict:
    example = {**_APPROVAL_EXAMPLE, "approval": {**_APPROVAL_EXAMPLE["approval"], "status": status}}
    if status != "PENDING":
        example["approval"].update(decided_by=decided_by, decided_at="2026-12-07T21:44:03.120000+00:00")
    return example


register(
    EventSpec(
        "approval.requested",
        "A tool call waits for a person's approval.",
        ("APPROVAL_REQUESTED",),
        _approval_data,
        _example_approval("PENDING"),
    )
)
register(
    EventSpec(
        "approval.decided",
        "An approval request was approved or denied (approval.status says which).",
        ("APPROVAL_DECIDED",),
        _approval_data,
        _example_approval("APPROVED", "user:acme-approver"),
    )
)
register(
    EventSpec(
        "approval.expired",
        "An approval request reached its deadline undecided.",
        ("APPROVAL_EXPIRED",),
        _approval_data,
        _example_approval("EXPIRED", None),
    )
)
register(
    EventSpec(
        "approval.withdrawn",
        "The runtime that asked withdrew its request.",
        ("APPROVAL_WITHDRAWN",),
        _approval_data,
        _example_approval("WITHDRAWN", "key:c1b3d4e5"),
    )
)


# ---------------------------------------------------------------- registry


def _version_tampered(record) -> dict | None:
    from registry.models import AgentVersion

    payload = record.payload
    if payload.get("status") not in (None, "TAMPERED"):
        return None
    version = AgentVersion.objects.select_related("template").filter(pk=record.target_id).first()
    if version is None:
        return None
    return {
        "version": {"id": str(version.pk), "template": version.template.name, "label": version.version_label},
        "stored_hash": payload.get("stored_hash"),
        "computed_hash": payload.get("computed_hash"),
        "url": version_link(version.pk),
    }


register(
    EventSpec(
        "version.tampered",
        "A version's stored genome no longer matches its hash; its live instances are quarantined.",
        ("INTEGRITY_FAILED",),
        _version_tampered,
        {
            "version": {"id": "9d3e1f0a-2b4c-4d6e-8f0a-1b2c3d4e5f60", "template": "support-bot", "label": "1.4.0"},
            "stored_hash": "7e8df758329cc04ec8984385ed0576fe5a3e0907b870d262a44adcf1448c403d",
            "computed_hash": "0c5b1e9a7d3f2a6e8b4c0d1f5a9e3b7c2d6f0a4e8b1c5d9f3a7e2b6c0d4f8a1e",
            "url": "https://arm.example.com/versions/9d3e1f0a-2b4c-4d6e-8f0a-1b2c3d4e5f60/",
        },
    )
)


def _state_change(payload: dict) -> tuple[str | None, str | None]:
    state = (payload.get("changes") or {}).get("state") or {}
    return state.get("before"), state.get("after")


def _instance_quarantined(record) -> dict | None:
    from registry.models import AgentInstance

    before, after = _state_change(record.payload)
    if after != "QUARANTINED":
        return None
    instance = AgentInstance.objects.select_related("version__template").filter(pk=record.target_id).first()
    if instance is None:
        return None
    version = instance.version
    return {
        "instance": {"id": str(instance.pk), "name": instance.name},
        "version": {"id": str(version.pk), "template": version.template.name, "label": version.version_label},
        "from_state": before,
        "reason": record.payload.get("reason", ""),
        "url": instance_link(instance.pk),
    }


register(
    EventSpec(
        "instance.quarantined",
        "An instance was quarantined (by a person, or because its version was found tampered).",
        ("INSTANCE_TRANSITIONED",),
        _instance_quarantined,
        {
            "instance": {"id": "0a7d5c1e-9f3b-4e2a-8c6d-1b0e9f8a7c6d", "name": "support-bot-prod-1"},
            "version": {"id": "9d3e1f0a-2b4c-4d6e-8f0a-1b2c3d4e5f60", "template": "support-bot", "label": "1.4.0"},
            "from_state": "ACTIVE",
            "reason": "integrity check failed",
            "url": "https://arm.example.com/instances/0a7d5c1e-9f3b-4e2a-8c6d-1b0e9f8a7c6d/",
        },
        matches=lambda record: _state_change(record.payload)[1] == "QUARANTINED",
    )
)


# ---------------------------------------------------------------- ledger


def _budget_threshold_crossed(record) -> dict | None:
    payload = record.payload
    return {
        "budget": {"id": record.target_id, "name": payload.get("budget")},
        "threshold_percent": payload.get("threshold"),
        "period": payload.get("period"),
        "period_start": payload.get("period_start"),
        "spend_usd": payload.get("spend_usd"),
        "amount_usd": payload.get("amount_usd"),
        "url": cost_link(),
    }


register(
    EventSpec(
        "budget.threshold_crossed",
        "A budget's spend in its period crossed one of its thresholds (once per threshold and period).",
        ("BUDGET_THRESHOLD_CROSSED",),
        _budget_threshold_crossed,
        {
            "budget": {"id": "3c2b1a09-8f7e-4d6c-b5a4-938271605f4e", "name": "support-monthly"},
            "threshold_percent": 80,
            "period": "monthly",
            "period_start": "2026-12-01",
            "spend_usd": "812.400000",
            "amount_usd": "1000.00",
            "url": "https://arm.example.com/cost/",
        },
    )
)

# n3: instance.stale, instance.recovered, budget.forecast_to_cross, provider.unhealthy, provider.recovered
# n4: evaluation.requested
# (one register(EventSpec(...)) each, below this line)


# ---------------------------------------------------------------- health (the schedules' sweeps, issue 25 item 4)


def _health_change(record) -> tuple[str | None, str | None]:
    return record.payload.get("before"), record.payload.get("after")


def _instance_health_data(record) -> dict | None:
    from registry.models import AgentInstance

    instance = (
        AgentInstance.objects.select_related("version__template", "environment", "provider")
        .filter(tenant_id=record.tenant_id, pk=record.target_id)
        .first()
    )
    if instance is None:
        return None
    version = instance.version
    before, after = _health_change(record)
    return {
        "instance": {"id": str(instance.pk), "name": instance.name, "state": instance.state},
        "version": {"id": str(version.pk), "template": version.template.name, "label": version.version_label},
        "environment": instance.environment.name,
        "provider": instance.provider.name,
        "before": before,
        "after": after,
        "last_heartbeat_at": record.payload.get("last_heartbeat_at"),
        "url": instance_link(instance.pk),
    }


def _instance_stale(record) -> dict | None:
    _, after = _health_change(record)
    return _instance_health_data(record) if after == "stale" else None


def _instance_recovered(record) -> dict | None:
    before, after = _health_change(record)
    return _instance_health_data(record) if before == "stale" and after == "healthy" else None


_INSTANCE_HEALTH_EXAMPLE = {
    "instance": {"id": "0a7d5c1e-9f3b-4e2a-8c6d-1b0e9f8a7c6d", "name": "support-bot-prod-1", "state": "ACTIVE"},
    "version": {"id": "9d3e1f0a-2b4c-4d6e-8f0a-1b2c3d4e5f60", "template": "support-bot", "label": "1.4.0"},
    "environment": "prod",
    "provider": "k8s-eu",
    "before": "degraded",
    "after": "stale",
    "last_heartbeat_at": "2026-12-07T21:38:02.512000+00:00",
    "url": "https://arm.example.com/instances/0a7d5c1e-9f3b-4e2a-8c6d-1b0e9f8a7c6d/",
}

register(
    EventSpec(
        "instance.stale",
        "An instance's last heartbeat is older than its tenant's heartbeat window (seen by the stale-heartbeat sweep).",
        ("INSTANCE_HEALTH_CHANGED",),
        _instance_stale,
        _INSTANCE_HEALTH_EXAMPLE,
        matches=lambda record: _health_change(record)[1] == "stale",
    )
)
register(
    EventSpec(
        "instance.recovered",
        "A stale instance sent a heartbeat again (seen by the next stale-heartbeat sweep).",
        ("INSTANCE_HEALTH_CHANGED",),
        _instance_recovered,
        {
            **_INSTANCE_HEALTH_EXAMPLE,
            "before": "stale",
            "after": "healthy",
            "last_heartbeat_at": "2026-12-07T21:52:30.004000+00:00",
        },
        matches=lambda record: _health_change(record) == ("stale", "healthy"),
    )
)


def _provider_health_data(record) -> dict | None:
    payload = record.payload
    from registry.models import Provider

    name = Provider.objects.filter(tenant_id=record.tenant_id, pk=record.target_id).values_list("name", flat=True)
    name = name.first()
    if name is None:
        return None
    return {
        "provider": {"id": record.target_id, "name": name},
        "before": payload.get("before"),
        "after": payload.get("after"),
        "status_code": payload.get("status_code"),
        "error": payload.get("error"),
        "latency_ms": payload.get("latency_ms"),
        "url": public_url(reverse("ui:federation")),
    }


def _provider_unhealthy(record) -> dict | None:
    _, after = _health_change(record)
    return _provider_health_data(record) if after == "unhealthy" else None


def _provider_recovered(record) -> dict | None:
    before, after = _health_change(record)
    return _provider_health_data(record) if before == "unhealthy" and after == "healthy" else None


_PROVIDER_HEALTH_EXAMPLE = {
    "provider": {"id": "6f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f", "name": "k8s-eu"},
    "before": "healthy",
    "after": "unhealthy",
    "status_code": 503,
    "error": "answered HTTP 503, expected 200",
    "latency_ms": 41,
    "url": "https://arm.example.com/federation/",
}

register(
    EventSpec(
        "provider.unhealthy",
        "A provider's health endpoint stopped answering as expected; new deployments to it are refused.",
        ("PROVIDER_HEALTH_CHANGED",),
        _provider_unhealthy,
        _PROVIDER_HEALTH_EXAMPLE,
        matches=lambda record: _health_change(record)[1] == "unhealthy",
    )
)
register(
    EventSpec(
        "provider.recovered",
        "An unhealthy provider's health endpoint answers as expected again.",
        ("PROVIDER_HEALTH_CHANGED",),
        _provider_recovered,
        {**_PROVIDER_HEALTH_EXAMPLE, "before": "unhealthy", "after": "healthy", "status_code": 200, "error": ""},
        matches=lambda record: _health_change(record) == ("unhealthy", "healthy"),
    )
)


def _budget_forecast_to_cross(record) -> dict | None:
    payload = record.payload
    return {
        "budget": {"id": record.target_id, "name": payload.get("budget")},
        "period": payload.get("period"),
        "period_start": payload.get("period_start"),
        "spend_usd": payload.get("spend_usd"),
        "forecast_usd": payload.get("forecast_usd"),
        "amount_usd": payload.get("amount_usd"),
        "runout_date": payload.get("runout_date"),
        "url": cost_link(),
    }


register(
    EventSpec(
        "budget.forecast_to_cross",
        "A budget's forecast for its period (the run rate) crosses its amount before the period ends (once per "
        "period).",
        ("BUDGET_FORECAST_CROSSING",),
        _budget_forecast_to_cross,
        {
            "budget": {"id": "3c2b1a09-8f7e-4d6c-b5a4-938271605f4e", "name": "support-monthly"},
            "period": "monthly",
            "period_start": "2026-12-01",
            "spend_usd": "402.100000",
            "forecast_usd": "1187.5500",
            "amount_usd": "1000.0000",
            "runout_date": "2026-12-24",
            "url": "https://arm.example.com/cost/",
        },
    )
)


# ---------------------------------------------------------------- evaluation.requested (issue 25 item 5)


def _entered_testing(record) -> bool:
    state = (record.payload.get("changes") or {}).get("lifecycle_state") or {}
    return record.target_type == "AgentVersion" and state.get("after") == "TESTING"


def _evaluation_requested(record) -> dict | None:
    """A version that entered TESTING: the version, its genome hash and a signed, single-use callback URL
    for the result (``registry.evaluation_requests`` opens the request in the record's transaction, so a
    rolled-back transition hands out no usable URL)."""
    if not _entered_testing(record):
        return None
    from registry.evaluation_requests import evaluation_requested_data
    from registry.models import AgentVersion

    version = AgentVersion.objects.select_related("template").get(tenant_id=record.tenant_id, pk=record.target_id)
    return evaluation_requested_data(version)


register(
    EventSpec(
        type="evaluation.requested",
        title="Evaluation requested: a version entered TESTING",
        sources=("VERSION_TRANSITIONED",),
        build=_evaluation_requested,
        matches=_entered_testing,
        example={
            "version": {
                "id": "5b0f3c1e-8d2a-4c47-9a51-0f7e2d9b6a10",
                "label": "1.4.0",
                "template": {"id": "0c6de0f2-3b5a-4f0e-8f55-2a7c1b9e4d21", "name": "support-agent"},
                "lifecycle_state": "TESTING",
                "eval_status": "PENDING",
                "parent": "9a2e8f71-6c3d-4b8a-a1f0-5e4d3c2b1a09",
                "genome_hash": "3f1d9c0b7e8a4f2d6c5b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c",
                "api_url": "https://arm.example.com/api/v1/versions/5b0f3c1e-8d2a-4c47-9a51-0f7e2d9b6a10/",
            },
            "genome_hash": "3f1d9c0b7e8a4f2d6c5b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c",
            "callback": {
                "url": "https://arm.example.com/api/v1/evaluation-callbacks/eyJuIjoi…:Qm9ndXNzaWc/",
                "method": "POST",
                "expires_at": "2026-12-14T22:30:00.123456Z",
                "request_id": "e4a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b",
            },
        },
    )
)


# ---------------------------------------------------------------- the test event ("send a test event")


def test_event_data(endpoint) -> dict:
    return {"endpoint": {"id": str(endpoint.pk), "name": endpoint.name}, "message": "A test event from ARM."}


register(
    EventSpec(
        TEST_EVENT,
        "Sent by 'Send a test event' on one endpoint only; not subscribable.",
        (),
        lambda record: None,
        {
            "endpoint": {"id": "e1d2c3b4-a596-4877-8695-a4b3c2d1e0f9", "name": "ops-webhook"},
            "message": "A test event from ARM.",
        },
    )
)
