"""Every write of a recorded model appends one change record, by construction (docs/audit.md).

For each model declaring ``audit = Recorded(...)`` (``arm.models``, found by ``audit.coverage``),
``connect()`` (run by ``AuditConfig.ready``) wires ``post_save`` and ``post_delete`` to append one record
to the tenant's chain (``audit.services.record_change``) inside the write's transaction, and
``pre_delete`` to refuse the deletes the model refuses. The record of a save says what the save did:

- ``event_type``: ``<PREFIX>_CREATED`` / ``<PREFIX>_CHANGED`` / ``<PREFIX>_DELETED``, or the event a
  service annotated the save with (below);
- ``payload``: ``action`` (``created`` / ``changed`` / ``deleted``), ``model`` (``registry.AgentVersion``),
  and ``after`` (every field), ``changes`` (``{field: {"before", "after"}}``, the recorded fields the save
  wrote with another value than the row had when loaded, refreshed or last saved:
  ``RecordedModel.changed_fields``) or ``before`` (every field); fields declared ``name_only`` are
  listed in ``values_withheld``, never with their value.

A save that changes no recorded field writes nothing (it changed nothing), unless it is annotated with
an event (a verification that found the row as it was is still a verification).

What a save meant is an annotation on its record, never a second record: ``arm.recording.annotate``
(below audit, so every app annotates its saves without importing audit), which the receivers here take
(``take_annotation``) when they write the record of the annotated object's next save or delete.

Writes that send no signals go through this module too, which writes their records:
``recorded_update`` (``QuerySet.update`` of recorded columns: the rows are read locked, updated, and
recorded, one chain extension per tenant), ``recorded_bulk_create``; ``arm.models.RecordedQuerySet``
refuses the plain forms. Data migrations append theirs with ``record_migration_changes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db import models, transaction
from django.db.models.signals import post_delete, post_save, pre_delete

from arm.errors import Immutable
from arm.models import Recorded
from arm.recording import Annotation, check_event, take_annotation
from audit.coverage import recorded_models
from audit.services import ChangeEntry, record_change, record_changes
from tenancy.context import Actor

# ---------------------------------------------------------------- per-model wiring


@dataclass(frozen=True)
class _TenantRef:
    """What ``record_change`` needs of a tenant (its pk), without loading the row."""

    pk: Any


@dataclass
class _Spec:
    """A recorded model's declaration and its fields, resolved once."""

    model: type
    recorded: Recorded

    @property
    def label(self) -> str:
        return self.model._meta.label

    def tenant_of(self, obj) -> _TenantRef:
        if not self.recorded.tenant:
            return _TenantRef(obj.pk)
        return _TenantRef(getattr(obj, f"{self.recorded.tenant}_id"))

    def event_type(self, action: str, annotation: Annotation | None) -> str:
        return annotation.event if annotation is not None and annotation.event else self.recorded.event(action)


_specs: dict[type, _Spec] = {}


def _spec(model) -> _Spec:
    try:
        return _specs[model]
    except KeyError:
        raise TypeError(f"{model.__name__} is not a recorded model (audit = Recorded(...)).") from None


def is_recorded(model) -> bool:
    return model in _specs


def _shown(obj) -> tuple[dict, list]:
    fields = obj.recorded_fields()
    values, withheld = {}, []
    for attname, name in fields.shown.items():
        if attname in fields.name_only:
            withheld.append(name)
        elif attname in obj.__dict__:
            values[name] = obj.__dict__[attname]
    return values, withheld


def _payload(spec: _Spec, action: str, body: dict, withheld: list) -> dict:
    payload = {"action": action, "model": spec.label, **body}
    if withheld:
        payload["values_withheld"] = withheld
    return payload


def created_payload(obj) -> dict:
    after, withheld = _shown(obj)
    return _payload(_spec(type(obj)), "created", {"after": after}, withheld)


def changed_payload(obj, changes: dict[str, tuple]) -> dict:
    name_only = {obj._meta.get_field(name).attname for name in changes} & obj.recorded_fields().name_only
    withheld = [name for name in changes if obj._meta.get_field(name).attname in name_only]
    shown = {name: {"before": b, "after": a} for name, (b, a) in changes.items() if name not in withheld}
    return _payload(_spec(type(obj)), "changed", {"changes": shown}, withheld)


def deleted_payload(obj) -> dict:
    before, withheld = _shown(obj)
    return _payload(_spec(type(obj)), "deleted", {"before": before}, withheld)


def created_entry(obj) -> ChangeEntry:
    """The generic ``<PREFIX>_CREATED`` record of one new row (for ``record_changes``)."""
    spec = _spec(type(obj))
    return ChangeEntry(spec.recorded.event("CREATED"), type(obj).__name__, str(obj.pk), created_payload(obj))


def _record(spec: _Spec, obj, action: str, payload: dict, annotation: Annotation | None) -> None:
    record_change(
        tenant=spec.tenant_of(obj),
        event_type=spec.event_type(action, annotation),
        target=obj,
        payload=annotation.apply(payload) if annotation is not None else payload,
        actor=annotation.actor if annotation is not None else None,
    )


def _on_save(sender, instance, created, update_fields=None, **kwargs):
    spec = _specs[sender]
    annotation = take_annotation(instance)
    if created:
        _record(spec, instance, "CREATED", created_payload(instance), annotation)
    else:
        changes = instance.changed_fields(update_fields)
        if changes or (annotation is not None and annotation.event):
            _record(spec, instance, "CHANGED", changed_payload(instance, changes), annotation)
    instance.snapshot(None if created else update_fields)


def _on_pre_delete(sender, instance, **kwargs):
    raise Immutable(
        f"{sender._meta.verbose_name.capitalize()} cannot be deleted: {_specs[sender].recorded.delete_refused}."
    )


def _on_delete(sender, instance, **kwargs):
    spec = _specs[sender]
    _record(spec, instance, "DELETED", deleted_payload(instance), take_annotation(instance))


def connect() -> None:
    """Wire the receivers of every recorded model (``AuditConfig.ready``)."""
    for model, recorded in recorded_models().items():
        _specs[model] = _Spec(model, recorded)
        uid = f"audit.recording:{model._meta.label}"
        post_save.connect(_on_save, sender=model, dispatch_uid=uid)
        post_delete.connect(_on_delete, sender=model, dispatch_uid=uid)
        if recorded.delete_refused:
            pre_delete.connect(_on_pre_delete, sender=model, dispatch_uid=uid)


# ---------------------------------------------------------------- writes that send no signals


def _plain(model, values: dict) -> dict:
    """{attname: value} of ``values`` (field names), refusing expressions: a record needs the value."""
    plain = {}
    for name, value in values.items():
        if hasattr(value, "resolve_expression"):
            raise TypeError(f"recorded_update writes plain values, not expressions ({name}={value!r}).")
        f = model._meta.get_field(name)
        plain[f.attname] = value.pk if f.is_relation and isinstance(value, models.Model) else value
    return plain


def recorded_update(
    queryset,
    *,
    event: str | None = None,
    reason: str | None = None,
    actor: Actor | None = None,
    extra: dict | None = None,
    **values,
) -> list:
    """``queryset.update(**values)`` with its records: the matching rows are read first, locked (``FOR
    NO KEY UPDATE``, in id order), so their before-values are the stored ones and a conditional update
    (``filter(status="PENDING")``) is settled by the database: a racing writer waits, then no longer
    matches. The locked rows are updated, and each row the update changed (every row, when annotated
    with an ``event``) gets its record, appended in one chain extension per tenant. Returns the rows,
    updated in memory (empty: nothing matched)."""
    model = queryset.model
    spec = _spec(model)
    probe = Annotation(check_event(model, event), reason, actor, dict(extra or {}))
    plain = _plain(model, values)
    with transaction.atomic(using=queryset.db, savepoint=False):
        rows = list(queryset.select_for_update(no_key=True, of=("self",)).order_by("pk"))
        pks = [row.pk for row in rows]
        for start in range(0, len(pks), 1000):
            model._base_manager.using(queryset.db).filter(pk__in=pks[start : start + 1000]).update(**values)
        by_tenant: dict[Any, list[ChangeEntry]] = {}
        for row in rows:
            for attname, value in plain.items():
                row.__dict__[attname] = value
            for name in values:
                f = model._meta.get_field(name)
                if f.is_relation and f.is_cached(row):
                    f.delete_cached_value(row)
            changes = row.changed_fields(values)
            if changes or probe.event:
                payload = probe.apply(changed_payload(row, changes))
                entry = ChangeEntry(spec.event_type("CHANGED", probe), model.__name__, str(row.pk), payload)
                by_tenant.setdefault(spec.tenant_of(row).pk, []).append(entry)
            row.snapshot(values)
        for tenant_id, entries in by_tenant.items():
            record_changes(tenant=_TenantRef(tenant_id), entries=entries, actor=actor)
    return rows


def recorded_bulk_create(
    objs, *, actor: Actor | None = None, batch_size: int | None = None, times: Iterator[datetime] | None = None
) -> list:
    """``bulk_create`` of new rows of one recorded model with their ``<PREFIX>_CREATED`` records, appended
    per tenant in one chain extension each. ``times``: the records' times, in order (synthetic history:
    the benchmark's data); now by default."""
    objs = list(objs)
    if not objs:
        return objs
    model = type(objs[0])
    _spec(model)
    with transaction.atomic(savepoint=False):
        model._base_manager.bulk_create(objs, batch_size=batch_size)
        by_tenant: dict[Any, list[ChangeEntry]] = {}
        for obj in objs:
            entry = created_entry(obj)
            if times is not None:
                entry = replace(entry, created_at=next(times))
            by_tenant.setdefault(_specs[model].tenant_of(obj).pk, []).append(entry)
            obj.snapshot()
        for tenant_id, entries in by_tenant.items():
            record_changes(tenant=_TenantRef(tenant_id), entries=entries, actor=actor)
    return objs


def record_migration_changes(apps, *, migration: str, label: str, rows, reason: str) -> int:
    """Append the records of a data migration's rewrite of recorded rows, with the migration's historical
    models (``apps``): ``rows`` are ``(tenant_id, pk, {field: (before, after)})``, recorded as
    ``<PREFIX>_CHANGED`` by actor ``system:migration <migration>`` with ``reason``, one chain extension
    per tenant. Returns how many were appended."""
    from django.apps import apps as live_apps

    model = live_apps.get_model(label)
    spec = _spec(model)
    by_tenant: dict[Any, list[ChangeEntry]] = {}
    for tenant_id, pk, changes in rows:
        withheld = [name for name in changes if name in spec.recorded.name_only]
        shown = {name: {"before": b, "after": a} for name, (b, a) in changes.items() if name not in withheld}
        payload = _payload(spec, "changed", {"changes": shown}, withheld)
        payload["reason"] = reason
        by_tenant.setdefault(tenant_id, []).append(
            ChangeEntry(spec.recorded.event("CHANGED"), model.__name__, str(pk), payload)
        )
    return _append_migration_records(apps, migration, by_tenant)


def record_migration_creations(apps, *, migration: str, label: str, rows, reason: str) -> int:
    """Append the records of rows a data migration created (a binding moved from a column to its own
    table): ``rows`` are ``(tenant_id, pk, {field: value})``, recorded as ``<PREFIX>_CREATED`` by actor
    ``system:migration <migration>`` with ``reason``, one chain extension per tenant."""
    from django.apps import apps as live_apps

    model = live_apps.get_model(label)
    spec = _spec(model)
    by_tenant: dict[Any, list[ChangeEntry]] = {}
    for tenant_id, pk, values in rows:
        withheld = [name for name in values if name in spec.recorded.name_only]
        after = {name: value for name, value in values.items() if name not in withheld}
        payload = _payload(spec, "created", {"after": after}, withheld)
        payload["reason"] = reason
        by_tenant.setdefault(tenant_id, []).append(
            ChangeEntry(spec.recorded.event("CREATED"), model.__name__, str(pk), payload)
        )
    return _append_migration_records(apps, migration, by_tenant)


def _append_migration_records(apps, migration: str, by_tenant: dict) -> int:
    actor = Actor.system(f"system:migration {migration}")
    record_model, head_model = apps.get_model("audit", "ChangeRecord"), apps.get_model("audit", "ChainHead")
    return sum(
        record_changes(
            tenant=_TenantRef(tenant_id), entries=entries, actor=actor, record_model=record_model, head_model=head_model
        )
        for tenant_id, entries in sorted(by_tenant.items(), key=lambda item: str(item[0]))
    )
