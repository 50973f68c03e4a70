"""Annotations of a recorded model's next write: what a service means by a save (its event, reason,
actor, context), kept here beside ``arm.models.Recorded`` so every app, ``tenancy`` at the bottom
included, annotates its saves without importing ``audit``. ``audit.recording`` writes the records: its
``post_save`` / ``post_delete`` receivers take the annotation (``take_annotation``) of the object they
record::

    with annotate(version, "VERSION_TRANSITIONED", reason=reason, actor=actor):
        version.save(update_fields=["lifecycle_state", "updated_at"])

The next save (or delete) of that object inside the block carries ``event``, ``reason`` and any extra
context in its payload and the event as its ``event_type``; a second save in the block writes its own,
generic record. The event must be one the model declares; an annotation no write consumed is a bug
(``UnconsumedAnnotation``).
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from arm.models import Recorded

#: Payload keys every record may carry; an annotation's extra context uses other names.
RECORD_KEYS = frozenset({"action", "model", "after", "before", "changes", "values_withheld", "event", "reason"})


class UnknownEvent(ValueError):
    """A record named with an event no model declares (a typo, or a name only old records carry)."""


class UnconsumedAnnotation(RuntimeError):
    """A service annotated an object (``annotate``) but never saved or deleted it inside the block."""


@dataclass
class Annotation:
    event: str | None
    reason: str | None
    actor: Any  # a tenancy.context.Actor, or None: the context's
    extra: dict
    consumed: bool = False

    def withdraw(self) -> None:
        """The write this annotated did not happen (a conditional write that matched nothing): no record
        is due, and none is written."""
        self.consumed = True

    def apply(self, payload: dict) -> dict:
        if self.event is not None:
            payload["event"] = self.event
        if self.reason is not None:
            payload["reason"] = self.reason
        payload.update(self.extra)
        return payload


def declared_events(model) -> frozenset:
    """The events a record of ``model``'s writes may carry: its generic ones and those it declares;
    ``TypeError`` when its writes are not recorded."""
    recorded = getattr(model, "audit", None)
    if not isinstance(recorded, Recorded):
        raise TypeError(f"{model.__name__} is not a recorded model (audit = Recorded(...)).")
    return frozenset({*recorded.generic_events, *recorded.events})


def check_event(model, event) -> str | None:
    """``event`` as a string when ``model`` declares it (None stays None); ``UnknownEvent`` otherwise."""
    events = declared_events(model)
    if event is not None and str(event) not in events:
        raise UnknownEvent(f"{model.__name__} declares no event {event!r} (its audit = Recorded(events=...)).")
    return None if event is None else str(event)


_annotations: ContextVar[tuple[tuple[Any, Annotation], ...]] = ContextVar("audit_annotations", default=())


@contextlib.contextmanager
def annotate(obj, event: str | None = None, *, reason: str | None = None, actor=None, **extra):
    """Annotate the record of the next save or delete of ``obj`` inside the block: its ``event`` (one
    ``type(obj).audit`` declares; the record's ``event_type``), ``reason``, ``actor`` (default: the
    context's) and ``extra`` context (payload keys beside the record's own)."""
    event = check_event(type(obj), event)
    clash = sorted(RECORD_KEYS & set(extra))
    if clash:
        raise ValueError(f"Annotation context may not replace the record's own {', '.join(clash)}.")
    annotation = Annotation(event, reason, actor, extra)
    # Kept in the context (a thread's, a task's), not on the object: threads sharing one object (a request's
    # version deployed twice at once) each annotate their own save.
    token = _annotations.set((*_annotations.get(), (obj, annotation)))
    try:
        yield annotation
    finally:
        _annotations.reset(token)
    if not annotation.consumed:
        raise UnconsumedAnnotation(
            f"{type(obj).__name__} {obj.pk} was annotated ({annotation.event or annotation.reason}) but not saved"
        )


def take_annotation(obj) -> Annotation | None:
    """The innermost annotation of this very object (not another object of the same row) not yet consumed,
    marked consumed: the record being written carries it."""
    for annotated, annotation in reversed(_annotations.get()):
        if annotated is obj and not annotation.consumed:
            annotation.consumed = True
            return annotation
    return None
