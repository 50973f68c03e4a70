"""Event names: every name a change record's ``event_type`` may carry, discovered from the models.

A model declares its names where it declares its fields (``audit = Recorded("TEMPLATE", events=(...))``,
``arm.models``): the generic ``<PREFIX>_CREATED`` / ``_CHANGED`` / ``_DELETED`` follow from its prefix,
``events`` lists the semantic ones its services annotate records with (``VERSION_TRANSITIONED``) or
record about it (``INTEGRITY_SWEEP``). ``EventType`` is the registry built from those declarations the
first time it is used: ``EventType.VERSION_TRANSITIONED`` is the name, an unknown name raises, and
``audit.services.record_change`` refuses a record under a name nobody declared. A new event is a name
in a declaration: no enum member, no migration.

``ALIASES``: names services wrote before the record of a save became one record (docs/audit.md). They
stay on old records (never rewritten: the chain hashes them) and in filters, where each one finds the
records of its twin too (``equivalents``); no new record is written under them.
"""

from __future__ import annotations

import functools

# Raised by arm.recording too (an annotation's event, below audit): one class for both, named here as before.
from arm.recording import UnknownEvent  # noqa: F401

#: Old name -> the name written now for the same change (an update through a service was its own
#: ``<PREFIX>_UPDATED`` record; it is the model's ``<PREFIX>_CHANGED`` record now).
ALIASES = {
    "TEMPLATE_UPDATED": "TEMPLATE_CHANGED",
    "INSTANCE_UPDATED": "INSTANCE_CHANGED",
    "PROVIDER_UPDATED": "PROVIDER_CHANGED",
    "ENVIRONMENT_UPDATED": "ENVIRONMENT_CHANGED",
    "POLICY_UPDATED": "POLICY_CHANGED",
    "PRICE_UPDATED": "PRICE_CHANGED",
    "BUDGET_UPDATED": "BUDGET_CHANGED",
    "TENANT_UPDATED": "TENANT_CHANGED",
}


@functools.cache
def declared() -> dict[str, str]:
    """{event name: label of the model declaring it}, from every model's ``audit`` declaration."""
    from arm.models import Recorded
    from audit.coverage import declaration, domain_models

    names: dict[str, str] = {}
    for model in domain_models():
        declared_by = declaration(model)
        if declared_by is None:
            continue
        generic = declared_by.generic_events if isinstance(declared_by, Recorded) else ()
        for name in (*generic, *declared_by.events):
            names.setdefault(name, model._meta.label)
    return names


class EventNames:
    """The registry of event names (``EventType``): attribute access, ``in``, ``values`` and ``choices``
    over the declared names and the old ones of ``ALIASES``."""

    def __getattr__(self, name: str) -> str:
        if name.isupper() and (name in declared() or name in ALIASES):
            return name
        raise AttributeError(f"No model declares the event {name!r} (audit = Recorded(..., events=...)).")

    def __contains__(self, name) -> bool:
        return name in declared() or name in ALIASES

    @property
    def values(self) -> list[str]:
        return sorted({*declared(), *ALIASES})

    @property
    def choices(self) -> list[tuple[str, str]]:
        return [(name, name) for name in self.values]

    def writable(self, name: str) -> str:
        """``name`` when a new record may carry it; ``UnknownEvent`` otherwise."""
        if name in declared():
            return name
        if name in ALIASES:
            raise UnknownEvent(
                f"{name} is the old name of {ALIASES[name]}: new records are written as {ALIASES[name]}."
            )
        raise UnknownEvent(f"No model declares the event {name!r}: add it to its model's audit = Recorded(events=...).")

    def equivalents(self, name: str) -> tuple[str, ...]:
        """``name`` and the names of the same change on older records (``ALIASES``), both ways."""
        current = ALIASES.get(name, name)
        return (current, *sorted(old for old, new in ALIASES.items() if new == current))


EventType = EventNames()


def event_choices() -> list[tuple[str, str]]:
    """For filter fields (a callable: the registry is read once the apps are loaded)."""
    return EventType.choices
