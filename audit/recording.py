"""Every save writes a change record, by construction: the signal receivers behind ``audit.coverage``.

For each model in ``coverage.RECORDED``, ``connect()`` (run by ``AuditConfig.ready``) wires:

- ``post_init``: remembers the field values the object was loaded (or built) with, so a save can say
  which fields it changed without reading the row again (JSON lists and objects are kept as their
  canonical JSON text, so changing one in place is still seen);
- ``post_save``: appends one record to the tenant's chain (``audit.services.record_change``), inside
  the save's transaction (``arm.models.RecordedModel``);
- ``post_delete``: the same for a delete; ``pre_delete`` refuses deletes the coverage table forbids.

Which record: a service that knows what happened names it around its save::

    with describe(EventType.VERSION_TRANSITIONED, target=version, payload={...}, actor=actor):
        version.save(update_fields=["lifecycle_state", "updated_at"])

The receiver for that object consumes the description and writes exactly that record (no second,
generic one). ``covers`` names other objects saved as part of the same event (an evaluation result
saved with the version it updates), whose saves then write nothing of their own. A description no save
consumed is a bug: leaving the block normally raises ``UnconsumedDescription``.

Without a description the record is generic: ``<PREFIX>_CREATED`` (``{"after": {field: value}}``),
``<PREFIX>_CHANGED`` (``{"changes": {field: {"before", "after"}}}``, only the fields the save wrote and
changed) or ``<PREFIX>_DELETED`` (``{"before": {...}}``); fields listed ``name_only`` appear in
``"values_withheld"`` and never with their value. A save that changes nothing (or only
``unrecorded_columns``) writes nothing: it changed nothing.

Bulk inserts send no signals: ``record_bulk_created`` writes their generic records in one chain
extension (``audit.services.record_changes``).
"""

from __future__ import annotations

import contextlib
import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.apps import apps
from django.db.models.signals import post_delete, post_init, post_save, pre_delete

from arm.context import Actor, is_reading_only
from arm.errors import Immutable
from audit.coverage import RECORDED, Recorded
from audit.services import ChangeEntry, record_change, record_changes

_LOADED = "_audit_loaded"


class UnconsumedDescription(RuntimeError):
    """A service described a change (``describe``) but never saved or deleted the object it named."""


@dataclass
class Description:
    event_type: str
    target: Any
    payload: dict | None
    actor: Actor | None
    covers: tuple = ()
    consumed: bool = False

    def matches(self, obj) -> bool:
        return any(_same_row(obj, other) for other in (self.target, *self.covers))


_described: ContextVar[tuple[Description, ...]] = ContextVar("audit_described", default=())


@contextlib.contextmanager
def describe(event_type, *, target, payload: dict | None = None, actor: Actor | None = None, covers=()):
    """Name the change record of the next save or delete of ``target`` (and of ``covers``) inside the
    block: that record is written, once, instead of the generic one."""
    description = Description(str(event_type), target, payload, actor, tuple(covers))
    token = _described.set((*_described.get(), description))
    try:
        yield description
    finally:
        _described.reset(token)
    if not description.consumed:
        raise UnconsumedDescription(
            f"{description.event_type} was described for {type(target).__name__} {target.pk} but nothing saved it"
        )


def _same_row(a, b) -> bool:
    return a is b or (a._meta.concrete_model is b._meta.concrete_model and a.pk is not None and a.pk == b.pk)


def _description_for(obj) -> Description | None:
    for description in reversed(_described.get()):
        if description.matches(obj):
            return description
    return None


# ---------------------------------------------------------------- per-model wiring


@dataclass(frozen=True)
class _TenantRef:
    """What ``record_change`` needs of a tenant (its pk), without loading the row."""

    pk: Any


@dataclass
class _Spec:
    """A model's coverage entry, resolved against its fields once."""

    model: type
    recorded: Recorded
    tracked: dict[str, str] = field(default_factory=dict)  # attname -> field name, diffed on save
    shown: dict[str, str] = field(default_factory=dict)  # attname -> field name, shown on create/delete
    name_only: frozenset = frozenset()  # attnames
    unrecorded: frozenset = frozenset()  # attnames

    @classmethod
    def build(cls, model, recorded: Recorded) -> _Spec:
        spec = cls(model, recorded)
        by_name = {f.name: f for f in model._meta.concrete_fields}
        # Names that are not fields are reported by the coverage check (audit.E006), not here.
        spec.name_only = frozenset(by_name[n].attname for n in recorded.name_only if n in by_name)
        spec.unrecorded = frozenset(by_name[n].attname for n in recorded.unrecorded_columns if n in by_name)
        for f in model._meta.concrete_fields:
            if f.primary_key or getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                continue  # the id is the record's target; the record carries its own time
            spec.shown[f.attname] = f.name
            if f.attname not in spec.unrecorded:
                spec.tracked[f.attname] = f.name
        return spec

    def tenant_of(self, obj) -> _TenantRef:
        if not self.recorded.tenant:
            return _TenantRef(obj.pk)
        return _TenantRef(getattr(obj, f"{self.recorded.tenant}_id"))


_specs: dict[type, _Spec] = {}


def _freeze(value):
    """A copy of a loaded value that later in-place changes cannot reach: JSON lists and objects as
    their canonical text (orjson, falling back to json for numbers orjson refuses)."""
    if isinstance(value, (dict, list)):
        try:
            return _Frozen(orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS))
        except (TypeError, orjson.JSONEncodeError):
            return _Frozen(json.dumps(value, sort_keys=True, default=str).encode())
    return value


@dataclass(frozen=True)
class _Frozen:
    text: bytes

    def thaw(self):
        return json.loads(self.text)


def _remember(spec: _Spec, obj) -> None:
    values = obj.__dict__
    # Deferred fields (``.only()``) are not loaded: nothing to compare. Runs for every row any query
    # loads (a 1000-row list too), so only the JSON values are copied, and plain values kept as they are.
    loaded = {attname: values[attname] for attname in spec.tracked if attname in values}
    for attname, value in loaded.items():
        if isinstance(value, (dict, list)) and attname not in spec.name_only:
            loaded[attname] = _freeze(value)
    values[_LOADED] = loaded


class NotSnapshotted(RuntimeError):
    """An object loaded inside ``arm.context.reading_only()`` was saved: its save could not say what it
    changed."""


def _on_init(sender, instance, **kwargs):
    if is_reading_only():
        instance.__dict__[_LOADED] = None
    else:
        _remember(_specs[sender], instance)


def _value(value):
    return value.thaw() if isinstance(value, _Frozen) else value


def _shown(spec: _Spec, obj) -> tuple[dict, list]:
    values, withheld = {}, []
    for attname, name in spec.shown.items():
        if attname in spec.name_only:
            withheld.append(name)
        elif attname in obj.__dict__:
            values[name] = obj.__dict__[attname]
    return values, withheld


def _changes(spec: _Spec, obj, update_fields) -> tuple[dict, list]:
    loaded = obj.__dict__.get(_LOADED, {})
    if loaded is None:
        raise NotSnapshotted(
            f"{type(obj).__name__} {obj.pk} was loaded for reading only (reading_only); re-read it to save"
        )
    changes, withheld = {}, []
    for attname, name in spec.tracked.items():
        if update_fields is not None and name not in update_fields and attname not in update_fields:
            continue
        if attname not in obj.__dict__:
            continue
        now = obj.__dict__[attname]
        if attname in loaded:
            before = loaded[attname]
            same = before == _freeze(now) if isinstance(before, _Frozen) else before == now
            if same:
                continue
            before = _value(before)
        else:
            before = None  # not loaded (deferred) when the object was read
        if attname in spec.name_only:
            withheld.append(name)
        else:
            changes[name] = {"before": before, "after": now}
    return changes, withheld


def created_entry(obj) -> ChangeEntry:
    """The generic ``<PREFIX>_CREATED`` record of one new row (for ``record_changes``)."""
    spec = _specs[type(obj)]
    after, withheld = _shown(spec, obj)
    payload = {"after": after}
    if withheld:
        payload["values_withheld"] = withheld
    return ChangeEntry(spec.recorded.event("CREATED"), type(obj).__name__, str(obj.pk), payload)


def _on_save(sender, instance, created, update_fields=None, **kwargs):
    spec = _specs[sender]
    description = _description_for(instance)
    if description is not None:
        if not description.consumed:
            description.consumed = True
            record_change(
                tenant=_tenant_of(description.target),
                event_type=description.event_type,
                target=description.target,
                payload=description.payload,
                actor=description.actor,
            )
    elif created:
        entry = created_entry(instance)
        record_change(
            tenant=spec.tenant_of(instance), event_type=entry.event_type, target=instance, payload=entry.payload
        )
    else:
        changes, withheld = _changes(spec, instance, update_fields)
        if changes or withheld:
            payload = {"changes": changes}
            if withheld:
                payload["values_withheld"] = withheld
            record_change(
                tenant=spec.tenant_of(instance),
                event_type=spec.recorded.event("CHANGED"),
                target=instance,
                payload=payload,
            )
    _remember(spec, instance)


def _on_pre_delete(sender, instance, **kwargs):
    raise Immutable(
        f"{sender._meta.verbose_name.capitalize()} cannot be deleted: {_specs[sender].recorded.delete_refused}."
    )


def _on_delete(sender, instance, **kwargs):
    spec = _specs[sender]
    description = _description_for(instance)
    if description is not None:
        if not description.consumed:
            description.consumed = True
            record_change(
                tenant=_tenant_of(description.target),
                event_type=description.event_type,
                target=description.target,
                payload=description.payload,
                actor=description.actor,
            )
        return
    before, withheld = _shown(spec, instance)
    payload = {"before": before}
    if withheld:
        payload["values_withheld"] = withheld
    record_change(
        tenant=spec.tenant_of(instance), event_type=spec.recorded.event("DELETED"), target=instance, payload=payload
    )


def connect() -> None:
    """Wire the receivers for every model of ``coverage.RECORDED`` (``AuditConfig.ready``)."""
    for label, recorded in RECORDED.items():
        try:
            model = apps.get_model(label)
        except LookupError:
            continue  # reported by the coverage check (audit.E003)
        _specs[model] = _Spec.build(model, recorded)
        uid = f"audit.recording:{label}"
        post_init.connect(_on_init, sender=model, dispatch_uid=uid)
        post_save.connect(_on_save, sender=model, dispatch_uid=uid)
        post_delete.connect(_on_delete, sender=model, dispatch_uid=uid)
        if recorded.delete_refused:
            pre_delete.connect(_on_pre_delete, sender=model, dispatch_uid=uid)


def _tenant_of(obj) -> _TenantRef:
    return _specs[type(obj)].tenant_of(obj)


def is_recorded(model) -> bool:
    return model in _specs


def record_bulk_created(objs, *, actor: Actor | None = None) -> int:
    """The generic ``<PREFIX>_CREATED`` records of rows inserted with ``bulk_create`` (which sends no
    signals), appended per tenant in one chain extension each. Returns how many were written."""
    by_tenant: dict[Any, list[ChangeEntry]] = {}
    for obj in objs:
        spec = _specs[type(obj)]
        by_tenant.setdefault(spec.tenant_of(obj).pk, []).append(created_entry(obj))
    for tenant_id, entries in by_tenant.items():
        record_changes(tenant=_TenantRef(tenant_id), entries=entries, actor=actor)
    return sum(len(entries) for entries in by_tenant.values())
