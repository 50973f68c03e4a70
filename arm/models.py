"""The recorded-model base every audited model builds on: ``Recorded`` declares how a model's writes are
recorded, ``RecordedModel`` keeps the loaded row's before-values; ``audit`` discovers the declarations and
writes the records. Abstract only: the ``arm`` package is plumbing, not an installed app."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import orjson
from django.db import models, router, transaction


@dataclass(frozen=True)
class Recorded:
    """How a model's writes are recorded, declared on the model (``audit = Recorded(...)``); ``audit``
    discovers it from ``apps.get_models()`` and connects its receivers (``audit.recording``).

    ``prefix``: of the generic event names (``TEMPLATE`` → ``TEMPLATE_CREATED``, ``TEMPLATE_CHANGED``,
    ``TEMPLATE_DELETED``). ``tenant``: the field naming the tenant whose chain gets the record (``""``: the
    row is the tenant). ``name_only``: fields a record names but never shows the value of (secrets; bulky
    values whose hash is recorded). ``unrecorded_columns``: columns no record lists, which ``update()`` may
    write freely (hot-path stamps), each with its reason in a comment. ``delete_refused``: why deleting is
    refused ("" when a delete is recorded as ``<PREFIX>_DELETED``). ``events``: the semantic events a
    service may annotate this model's records with (``arm.recording.annotate``), or record about it
    when nothing of it is saved; a new event is a name here, no migration."""

    prefix: str
    tenant: str = "tenant"
    name_only: tuple[str, ...] = ()
    unrecorded_columns: tuple[str, ...] = ()
    delete_refused: str = ""
    events: tuple[str, ...] = ()

    def event(self, action: str) -> str:
        return f"{self.prefix}_{action}"

    @property
    def generic_events(self) -> tuple[str, ...]:
        actions = ("CREATED", "CHANGED") if self.delete_refused else ("CREATED", "CHANGED", "DELETED")
        return tuple(self.event(action) for action in actions)


@dataclass(frozen=True)
class Unrecorded:
    """A model whose writes append no change record, with the reason (``audit = Unrecorded("...")``).
    ``events``: records written about it by its services (a usage batch), as for ``Recorded``."""

    reason: str
    events: tuple[str, ...] = ()


class UnrecordedWrite(RuntimeError):
    """A bulk write of a recorded model's recorded columns outside ``audit.recording`` (``update()``,
    ``bulk_update()``, ``bulk_create()``): it would change rows without their change records."""


_MISSING = object()
SNAPSHOT = "_audit_snapshot"


@dataclass(frozen=True)
class _FrozenJSON:
    """A JSON list or object as its canonical text, so a later change made in place is still seen."""

    text: bytes

    def thaw(self):
        return orjson.loads(self.text)


def _freeze(value):
    if isinstance(value, (dict, list)):
        try:
            return _FrozenJSON(orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS))
        except (TypeError, orjson.JSONEncodeError):
            return _FrozenJSON(json.dumps(value, sort_keys=True, default=str).encode())
    return value


class _Snapshot:
    """The before-values of one object: the row as loaded (``from_db`` keeps the loaded tuple itself, no
    copy but of JSON values), then as refreshed and as saved. Built into a dict the first time a write
    asks for it, so loading rows to read them costs almost nothing."""

    __slots__ = ("_names", "_values", "_frozen", "_dict")

    def __init__(self, names=(), values=(), frozen=None):
        self._names, self._values, self._frozen, self._dict = names, values, frozen, None

    def as_dict(self) -> dict:
        if self._dict is None:
            self._dict = dict(zip(self._names, self._values, strict=False))
            if self._frozen:
                self._dict.update(self._frozen)
        return self._dict


@dataclass(frozen=True)
class RecordedFields:
    """A recorded model's fields as its records see them, resolved once per model."""

    tracked: dict  # attname -> field name: diffed on save (not the id, auto_now stamps or unrecorded columns)
    shown: dict  # attname -> field name: shown on create and delete
    name_only: frozenset  # attnames
    frozen: tuple  # attnames of tracked JSON fields, copied as text when loaded
    recorded_columns: frozenset  # names and attnames update() may not write outside audit.recording

    @classmethod
    def of(cls, model) -> RecordedFields:
        audit = model.audit
        by_name = {f.name: f for f in model._meta.concrete_fields}
        name_only = frozenset(by_name[n].attname for n in audit.name_only if n in by_name)
        unrecorded = frozenset(by_name[n].attname for n in audit.unrecorded_columns if n in by_name)
        tracked, shown = {}, {}
        for f in model._meta.concrete_fields:
            if f.primary_key or getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                continue  # the id is the record's target; the record carries its own time
            shown[f.attname] = f.name
            if f.attname not in unrecorded:
                tracked[f.attname] = f.name
        frozen = tuple(
            attname
            for attname in tracked
            if attname not in name_only and isinstance(model._meta.get_field(tracked[attname]), models.JSONField)
        )
        columns = frozenset({*tracked, *tracked.values()})
        return cls(tracked, shown, name_only, frozen, columns)


class RecordedQuerySet(models.QuerySet):
    """Bulk writes that would skip the change records are refused: ``update()`` and ``bulk_update()`` of
    recorded columns and ``bulk_create()`` go through ``audit.recording`` (``recorded_update``,
    ``recorded_bulk_create``), which writes them. Unrecorded columns (heartbeats, ``last_used_at``) stay
    one plain UPDATE."""

    def update(self, **kwargs):
        self.model.refuse_recorded_columns("update()", kwargs)
        return super().update(**kwargs)

    def bulk_update(self, objs, fields, batch_size=None):
        self.model.refuse_recorded_columns("bulk_update()", fields)
        return super().bulk_update(objs, fields, batch_size=batch_size)

    def bulk_create(self, objs, *args, **kwargs):
        raise UnrecordedWrite(
            f"bulk_create() of {self.model.__name__} would write no change records: use "
            "audit.recording.recorded_bulk_create."
        )


class RecordedModel(models.Model):
    """Base of every domain model whose writes append a change record (declared ``audit = Recorded(...)``;
    ``audit.recording`` writes the records, NetBox's ChangeLoggingMixin is the model).

    Before-values are the row as loaded (``from_db``), refreshed (``refresh_from_db``) or last saved
    (``snapshot``), never a query's every row copied field by field: a save says what it changed from
    them (``changed_fields``). ``save()`` runs inside a transaction: the caller's when there is one (no
    savepoint, so no extra query), else a new one; Django sends ``post_save`` (where the record is
    appended) inside it, so the row and its record commit or roll back together even for a bare
    ``save()`` in a shell. Deletes need nothing here: Django's deletion collector already sends
    ``post_delete`` inside its own transaction."""

    audit: ClassVar[Recorded | None] = None

    objects = RecordedQuerySet.as_manager()

    class Meta:
        abstract = True

    @classmethod
    def recorded_fields(cls) -> RecordedFields:
        fields = cls.__dict__.get("_recorded_fields")
        if fields is None:
            fields = RecordedFields.of(cls)
            cls._recorded_fields = fields
        return fields

    @classmethod
    def refuse_recorded_columns(cls, what: str, columns) -> None:
        recorded = sorted(set(columns) & cls.recorded_fields().recorded_columns)
        if recorded:
            raise UnrecordedWrite(
                f"{what} of {cls.__name__}'s recorded column(s) {', '.join(recorded)} would write no change "
                "records: save the objects, or use audit.recording.recorded_update."
            )

    @classmethod
    def from_db(cls, db, field_names, values):
        obj = super().from_db(db, field_names, values)
        frozen = cls.recorded_fields().frozen
        loaded = obj.__dict__
        obj.__dict__[SNAPSHOT] = _Snapshot(
            field_names, values, {a: _freeze(loaded[a]) for a in frozen if a in loaded} if frozen else None
        )
        return obj

    def refresh_from_db(self, using=None, fields=None, from_queryset=None):
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        # What was just read is what the row holds: a save now says what it changes from that.
        self.snapshot(fields)

    def snapshot(self, fields=None) -> None:
        """Take the current values of ``fields`` (names or attnames; every loaded field when None) as the
        before-values of the next save."""
        recorded = self.recorded_fields()
        tracked = recorded.tracked
        wanted = tracked if fields is None else [a for a, n in tracked.items() if a in fields or n in fields]
        current = self.__dict__
        previous = current.get(SNAPSHOT)
        values = dict(previous.as_dict()) if previous is not None and fields is not None else {}
        values.update({a: _freeze(current[a]) if a in recorded.frozen else current[a] for a in wanted if a in current})
        current[SNAPSHOT] = _Snapshot(tuple(values), tuple(values.values()))

    def unknown_before(self, update_fields=None) -> list[str]:
        """Attnames a save of ``update_fields`` would write whose before-values this object never read."""
        if self._state.adding:
            return []
        snapshot = self.__dict__.get(SNAPSHOT)
        known = snapshot.as_dict() if snapshot is not None else {}
        return [
            attname
            for attname, name in self.recorded_fields().tracked.items()
            if attname not in known
            and attname in self.__dict__
            and (update_fields is None or name in update_fields or attname in update_fields)
        ]

    def load_before(self, attnames, using=None) -> None:
        """Read the stored values of ``attnames`` as their before-values (an object built from an id, or a
        field deferred when it was loaded and set since): never a change recorded from a guess."""
        manager = type(self)._base_manager.db_manager(using or router.db_for_read(type(self), instance=self))
        row = manager.filter(pk=self.pk).values_list(*attnames).first()
        snapshot = self.__dict__.get(SNAPSHOT)
        values = dict(snapshot.as_dict()) if snapshot is not None else {}
        frozen = self.recorded_fields().frozen
        stored = row if row is not None else [None] * len(attnames)
        values.update({a: _freeze(v) if a in frozen else v for a, v in zip(attnames, stored, strict=True)})
        self.__dict__[SNAPSHOT] = _Snapshot(tuple(values), tuple(values.values()))

    def set_before(self, values: dict) -> None:
        """Take ``values`` ({attname: value}, known to be stored: a conditional update's condition) as
        before-values."""
        if not values:
            return
        frozen = self.recorded_fields().frozen
        snapshot = self.__dict__.get(SNAPSHOT)
        merged = dict(snapshot.as_dict()) if snapshot is not None else {}
        merged.update({a: _freeze(v) if a in frozen else v for a, v in values.items()})
        self.__dict__[SNAPSHOT] = _Snapshot(tuple(merged), tuple(merged.values()))

    def changed_fields(self, update_fields=None) -> dict[str, tuple]:
        """{field name: (before, after)} of the recorded fields a save of ``update_fields`` (all when None)
        writes with a value other than their before-value: the one diff every record is built from."""
        snapshot = self.__dict__.get(SNAPSHOT)
        before_values = snapshot.as_dict() if snapshot is not None else {}
        current = self.__dict__
        changes = {}
        for attname, name in self.recorded_fields().tracked.items():
            if update_fields is not None and name not in update_fields and attname not in update_fields:
                continue
            if attname not in current:
                continue  # deferred and never set: not written
            now = current[attname]
            before = before_values.get(attname, _MISSING)
            if isinstance(before, _FrozenJSON):
                if before == _freeze(now):
                    continue
                before = before.thaw()
            elif before is not _MISSING and before == now:
                continue
            changes[name] = (None if before is _MISSING else before, now)
        return changes

    def save(self, *args, **kwargs):
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            unknown = self.unknown_before(kwargs.get("update_fields"))
            if unknown:
                self.load_before(unknown, using)
            super().save(*args, **kwargs)
