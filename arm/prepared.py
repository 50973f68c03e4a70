"""Querysets, INSERTs and UPDATEs compiled to SQL once per process, for the few statements on every
request's hot path (``PreparedQuery``, ``PreparedInsert``, ``PreparedUpdate``).

Profiling a served heartbeat showed most of its time in the ORM *compiling* the API-key lookup (three
joins and a roles subquery), not in the database. A ``PreparedQuery`` keeps the ORM as the one
definition of the query: it compiles the queryset once (per database alias) with sentinel arguments,
remembers where those sentinels sit among the SQL parameters, and on each call only executes the SQL
with the real arguments and builds model instances exactly as ``QuerySet.__iter__`` does (converters,
``select_related`` objects, annotations).

Arguments are strings, UUIDs or dates compared by ``=`` (or ``IN`` one value): the sentinel of each
kind is found among the compiled parameters in whatever form the backend uses (a UUID as itself on
PostgreSQL, as 32 hex digits on SQLite; a date as itself or as ISO text), and each real argument is
converted the same way. A query where an argument does not appear exactly once is refused when compiled.

On PostgreSQL the SQL is also *prepared* on each connection the first time it runs there (``arm.db``):
PostgreSQL then plans it once per connection instead of on every request.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import date

from django.db import connections
from django.db.models import QuerySet, sql
from django.db.models.query import get_related_populators
from django.db.models.signals import post_save, pre_save

from arm.db import execute
from arm.models import RecordedModel


def _identity(value):
    return value


def _forms(sentinel) -> list[tuple[object, Callable]]:
    """The forms a sentinel may take among the compiled parameters, each with the conversion that turns
    a real argument into that form."""
    if isinstance(sentinel, uuid.UUID):
        return [(sentinel, _identity), (sentinel.hex, lambda v: v.hex), (str(sentinel), str)]
    if isinstance(sentinel, date):
        return [(sentinel, _identity), (sentinel.isoformat(), lambda v: v.isoformat())]
    return [(sentinel, _identity)]


def _sentinel(kind: type, i: int):
    if kind is uuid.UUID:
        return uuid.UUID(int=0xA5A5_0000_0000_4000_8000_0000_0000_0000 + i)
    if kind is date:
        return date(1111, 1, 1 + i)
    return f"\x00prepared-{i}\x00"


class PreparedQuery:
    def __init__(self, build: Callable[..., QuerySet], *kinds: type):
        """``build(*args)`` returns the queryset; ``kinds`` are the argument types (``str`` when none is
        given, one argument)."""
        self._build = build
        self._kinds = kinds or (str,)
        self._compiled: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def _compile(self, alias: str) -> tuple:
        sentinels = [_sentinel(kind, i) for i, kind in enumerate(self._kinds)]
        queryset = self._build(*sentinels).using(alias)
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        slots = []
        for sentinel in sentinels:
            found = [
                (i, convert)
                for i, p in enumerate(params)
                for form, convert in _forms(sentinel)
                if type(p) is type(form) and p == form
            ]
            if len(found) != 1:
                raise ValueError("PreparedQuery: each argument must appear exactly once in the SQL parameters")
            slots.append(found[0])
        klass_info = compiler.klass_info
        select = compiler.select
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        init_list = [f[0].target.attname for f in select[start:end]]
        populators = get_related_populators(klass_info, select, alias)
        fields = [s[0] for s in select[0 : compiler.col_count]]
        converters = compiler.get_converters(fields)
        return (sql, list(params), slots, compiler, klass_info["model"], init_list, start, end, populators,
                dict(compiler.annotation_col_map or {}), converters)  # fmt: skip

    def first(self, *args, using: str = "default"):
        """The first row as a model instance (``None`` when there is none)."""
        objects = self.all(*args, using=using)
        return objects[0] if objects else None

    def all(self, *args, using: str = "default") -> list:
        """Every row, as model instances."""
        compiled = self._compiled.get(using)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(using) or self._compile(using)
                self._compiled[using] = compiled
        sql, params, slots, compiler, model, init_list, start, end, populators, annotations, converters = compiled
        params = list(params)
        for (slot, convert), value in zip(slots, args, strict=True):
            params[slot] = convert(value)
        rows = execute(sql, params, prepare=True, using=using)
        if converters:
            rows = list(compiler.apply_converters(rows, converters))
        objects = []
        for row in rows:
            obj = model.from_db(using, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for name, position in annotations.items():
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects


class PreparedInsert:
    """``INSERT`` of one instance of ``model`` with every concrete column, compiled by the ORM once per
    database alias and prepared on PostgreSQL, for the hot path's rows (the policy decision written on
    every evaluation, the approval request a NEEDS_APPROVAL evaluation opens). Profiled: the ORM's
    ``save()`` spent longer compiling the INSERT and binding its parameters in Python than the database
    spent running it.

    Only for a model whose primary key is set before saving (a UUID default) and whose ``save()`` is
    Django's. For a recorded model (``arm.models.RecordedModel``) it is a save: ``pre_save`` and, once the
    row is written, ``post_save`` are sent as ``Model.save`` sends them, so the row gets its change record
    (``audit.recording``, with the caller's annotation) in the same transaction; for any other model
    (decisions, which are themselves the record) no signal is sent. Values are prepared by the fields
    themselves (``pre_save``, ``get_db_prep_save``), exactly as ``Model.save`` does, and the statement is
    ``SQLInsertCompiler``'s own text.

    ``skip_conflicts=True`` appends ``ON CONFLICT DO NOTHING`` (PostgreSQL, and SQLite's upsert syntax):
    a row that would break a unique constraint is not inserted and the call returns ``False``, without
    the savepoint a caught ``IntegrityError`` needs (two round trips). Only uniqueness is skipped on both
    databases; a NOT NULL, CHECK or foreign key violation still raises (unlike SQLite's ``INSERT OR
    IGNORE``, which ``bulk_create(ignore_conflicts=True)`` uses)."""

    def __init__(self, model, *, skip_conflicts: bool = False):
        if model._meta.auto_field is not None:
            raise ValueError("PreparedInsert: the primary key must be set before saving, not by the database")
        self._model = model
        self._skip_conflicts = skip_conflicts
        # The columns ``Model.save`` inserts: every concrete field but those the database generates.
        self._fields = [field for field in model._meta.local_concrete_fields if not field.generated]
        self._sql: dict[str, str] = {}
        self._lock = threading.Lock()

    def _compile(self, obj, alias: str) -> str:
        query = sql.InsertQuery(self._model)
        query.insert_values(self._fields, [obj])
        ((statement, _),) = query.get_compiler(using=alias).as_sql()
        return f"{statement} ON CONFLICT DO NOTHING" if self._skip_conflicts else statement

    def __call__(self, obj, using: str = "default") -> bool:
        """Insert ``obj``; ``True`` when the row was written. A conflict raises ``IntegrityError`` as
        ``save(force_insert=True)`` would, or returns ``False`` with ``skip_conflicts``."""
        if type(obj) is not self._model:
            raise TypeError(f"PreparedInsert: expected a {self._model.__name__}")
        statement = self._sql.get(using)
        if statement is None:
            with self._lock:
                statement = self._sql.get(using) or self._compile(obj, using)
                self._sql[using] = statement
        connection = connections[using]
        recorded = isinstance(obj, RecordedModel)
        if recorded:
            pre_save.send(sender=self._model, instance=obj, raw=False, using=using, update_fields=None)
        params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in self._fields]
        if not execute(statement, params, fetch=False, prepare=True, using=using):
            return False
        obj._state.adding = False
        obj._state.db = using
        if recorded:
            post_save.send(sender=self._model, instance=obj, created=True, update_fields=None, raw=False, using=using)
        return True


class PreparedUpdate:
    """``Model.objects.filter(pk=…, <where>).update(field=…, …)`` for a fixed set of ``fields`` (and of
    ``where`` conditions): the same statement, written once per database alias and prepared on
    PostgreSQL. Like ``QuerySet.update`` it leaves ``auto_now`` fields alone (and sends no signals, but for a
    recorded model, below); values
    are prepared by the fields (``get_db_prep_save``, and ``get_db_prep_value`` for the conditions).

    ``where`` names conditions as the ORM would, ``"status"`` or ``"expires_at__gt"`` (``exact``, ``gt``,
    ``gte``, ``lt``, ``lte``, and ``isnull``, whose value must be True), for a conditional update that
    settles a race (``approval_decide``: only a request still PENDING and not yet due); each call gives
    their values.

    For a recorded model (``arm.models.RecordedModel``) the call takes the object, not its id, and is a
    save of ``fields``: it sends ``pre_save`` and, when the row changed, ``post_save`` as
    ``save(update_fields=...)`` does, with the object's values set and its before-values those it was
    loaded with (an ``exact`` condition's value is the stored one), so the change gets its record
    (``audit.recording``, with the caller's annotation) in the same transaction."""

    _OPERATORS = {"exact": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "isnull": "IS NULL"}

    def __init__(self, model, *fields: str, where: tuple[str, ...] = ()):
        self._model = model
        self._fields = [model._meta.get_field(name) for name in fields]
        self._pk = model._meta.pk
        self._where = []
        for condition in where:
            name, _, lookup = condition.partition("__")
            if (lookup or "exact") not in self._OPERATORS:
                raise ValueError(f"PreparedUpdate: unsupported lookup in {condition!r}")
            self._where.append((condition, model._meta.get_field(name), self._OPERATORS[lookup or "exact"]))
        self._sql: dict[str, str] = {}
        self._lock = threading.Lock()

    def _compile(self, alias: str) -> str:
        # The statement ``QuerySet.update`` compiles for plain fields; a field with its own placeholder SQL
        # (``get_placeholder``, e.g. a geometry) is refused rather than guessed.
        if any(hasattr(field, "get_placeholder") for field in self._fields):
            raise ValueError("PreparedUpdate: fields with their own placeholder SQL are not supported")
        qn = connections[alias].ops.quote_name
        sets = ", ".join(f"{qn(field.column)} = %s" for field in self._fields)
        conditions = "".join(
            f" AND {qn(field.column)} {operator}" + ("" if operator == "IS NULL" else " %s")
            for _, field, operator in self._where
        )
        return f"UPDATE {qn(self._model._meta.db_table)} SET {sets} WHERE {qn(self._pk.column)} = %s{conditions}"

    def __call__(self, pk, using: str = "default", where: dict | None = None, **values) -> int:
        """Update the row ``pk`` (a recorded model's object) when ``where`` holds; returns the number of
        rows changed (0 or 1)."""
        obj = None
        if issubclass(self._model, RecordedModel):
            if not isinstance(pk, self._model):
                raise TypeError(f"PreparedUpdate: give the {self._model.__name__} itself, so its change is recorded")
            obj, pk = pk, pk.pk
        if set(values) != {field.name for field in self._fields}:
            raise TypeError("PreparedUpdate: give exactly the fields it was built for")
        if set(where or {}) != {condition for condition, _, _ in self._where}:
            raise TypeError("PreparedUpdate: give a value for exactly the conditions it was built for")
        statement = self._sql.get(using)
        if statement is None:
            with self._lock:
                statement = self._sql.get(using) or self._compile(using)
                self._sql[using] = statement
        connection = connections[using]
        params = [field.get_db_prep_save(values[field.name], connection) for field in self._fields]
        params.append(self._pk.get_db_prep_value(pk, connection))
        if any(where[c] is not True for c, _, operator in self._where if operator == "IS NULL"):
            raise TypeError("PreparedUpdate: an isnull condition takes True")
        params += [
            field.get_db_prep_value(where[condition], connection)
            for condition, field, operator in self._where
            if operator != "IS NULL"
        ]
        if obj is None:
            return execute(statement, params, fetch=False, prepare=True, using=using)
        names = frozenset(values)
        pre_save.send(sender=self._model, instance=obj, raw=False, using=using, update_fields=names)
        unknown = obj.unknown_before(names)
        if unknown:
            obj.load_before(unknown, using)
        changed = execute(statement, params, fetch=False, prepare=True, using=using)
        if changed:
            stored = {field.attname: where[c] for c, field, op in self._where if op == "=" and field.name in values}
            stored.update(
                {field.attname: None for _, field, op in self._where if op == "IS NULL" and field.name in values}
            )
            obj.set_before(stored)
            for field in self._fields:
                obj.__dict__[field.attname] = values[field.name]
            post_save.send(sender=self._model, instance=obj, created=False, update_fields=names, raw=False, using=using)
        return changed
