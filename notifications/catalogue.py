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
