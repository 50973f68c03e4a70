"""What an event says to a person: a headline, the facts worth reading and the link to act on, read from
the event's Standard Webhooks body (``{"type", "timestamp", "data"}``). Slack messages (``notifications.
slack``) and emails (``notifications.email``) are both written from this, so they say the same thing.

Only the catalogue's documented keys are read, each with ``.get``: a type whose builder sends less (or a
type added later) still gives a message, with its title and whatever facts it has."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from notifications import catalogue


@dataclass(frozen=True)
class Message:
    headline: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""
    action: str = "Open in ARM"  # the link's text


def usd(value) -> str:
    """``"0.2500"`` as ``$0.25``; digits past the cents kept only when they count (``$0.0125``)."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    cents = amount.quantize(Decimal("0.01"))
    return f"${cents if cents == amount else amount.normalize()}"


def when(value) -> str:
    """An event's ISO 8601 time as people read it: ``2026-12-08 03:00 UTC``."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _approval(data: dict, event_type: str) -> Message:
    approval = data.get("approval") or {}
    instance = (data.get("instance") or {}).get("name") or "an instance"
    tool = approval.get("tool") or "a tool call"
    status = approval.get("status") or ""
    headline = {
        "approval.requested": f"Approval needed: {tool} on {instance}",
        "approval.decided": f"{tool} on {instance} was {status.lower() or 'decided'}"
        + (f" by {approval['decided_by']}" if approval.get("decided_by") else ""),
        "approval.expired": f"Approval expired undecided: {tool} on {instance}",
        "approval.withdrawn": f"Approval request withdrawn: {tool} on {instance}",
    }.get(event_type, f"{tool} on {instance}")
    estimate = approval.get("estimated_cost_usd")
    scopes = approval.get("data_scopes") or []
    facts = [
        ("Tool", tool),
        ("Instance", instance),
        ("Risk", approval.get("risk") or "—"),
        ("Estimate, at most", usd(estimate) if estimate not in (None, "") else "none"),
        ("Data scopes, at most", ", ".join(scopes) if scopes else "none"),
        ("Requested by", approval.get("requester") or "—"),
    ]
    if event_type == "approval.requested":
        facts.append(("Expires", when(approval["expires_at"]) if approval.get("expires_at") else "—"))
    else:
        facts.append(("Status", status or "—"))
    if approval.get("note"):
        facts.append(("Note", approval["note"]))
    reasons = [
        r.get("message", r.get("code", "")) if isinstance(r, dict) else str(r) for r in approval.get("reasons") or []
    ]
    if reasons:
        facts.append(("Why it needs a person", "; ".join(reasons)))
    action = "Review the request" if event_type == "approval.requested" else "Open in ARM"
    return Message(headline, facts, data.get("url") or "", action)


def _named(value) -> str:
    """A ``{"name": …}`` or ``{"template", "label"}`` object as text."""
    if not isinstance(value, dict):
        return "" if value is None else str(value)
    if value.get("template") and value.get("label"):
        template = value["template"]
        template = template.get("name", "") if isinstance(template, dict) else template
        return f"{template}@{value['label']}"
    return str(value.get("name") or value.get("label") or value.get("id") or "")


def describe(event_type: str, data: dict, *, tenant_name: str = "") -> Message:
    """The message for an event of ``event_type`` whose body's ``data`` is ``data``."""
    data = data if isinstance(data, dict) else {}
    if event_type.startswith("approval."):
        return _approval(data, event_type)
    spec = catalogue.CATALOGUE.get(event_type)
    title = spec.title.rstrip(".") if spec is not None and spec.title else event_type
    if event_type == catalogue.TEST_EVENT:
        name = _named(data.get("endpoint"))
        where = f" in {tenant_name}" if tenant_name else ""
        return Message(f"Test event for {name}{where}: this endpoint receives ARM's notifications", [], "")
    facts = []
    for key, label in (
        ("version", "Version"),
        ("instance", "Instance"),
        ("provider", "Provider"),
        ("budget", "Budget"),
        ("threshold_percent", "Threshold (%)"),
        ("spend_usd", "Spend (USD)"),
        ("amount_usd", "Amount (USD)"),
        ("forecast_usd", "Forecast (USD)"),
        ("period_start", "Period from"),
        ("from_state", "From state"),
        ("reason", "Reason"),
        ("before", "Before"),
        ("after", "After"),
        ("error", "Error"),
        ("genome_hash", "Genome hash"),
    ):
        value = data.get(key)
        if value not in (None, "", {}, []):
            facts.append((label, _named(value)))
    return Message(title, facts, data.get("url") or "")


def describe_event(event, *, tenant_name: str = "") -> Message:
    payload = event.payload if isinstance(event.payload, dict) else {}
    return describe(event.type, payload.get("data") or {}, tenant_name=tenant_name)
