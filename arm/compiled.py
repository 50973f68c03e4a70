"""Querysets compiled to SQL once per process: the one boundary for the hot path's reads.

Profiled on a quiet machine, most of a served heartbeat or evaluation was the ORM *compiling* its reads
(the API-key lookup with three joins and two subqueries: about 1.7 ms of Python for 0.2 ms of database
time), not running them. A ``CompiledQuery`` keeps the ORM queryset as the one definition of the query:
it compiles it once per database alias with sentinel arguments, remembers where those sentinels sit
among the SQL parameters, and on each call only runs the SQL with the real arguments and builds model
instances as ``QuerySet.__iter__`` does (converters, ``select_related`` objects, annotations). The
figures are in docs/benchmarks.md ("Performance code, piece by piece").

With ``ARM_COMPILED_QUERIES=false`` every call is the plain queryset (``list(build(*args))``), for an
A/B run or to rule this module out. Arguments are UUIDs, dates or strings compared by ``=``; a query in
which an argument does not appear exactly once among the parameters is refused when it is compiled.

Django's private API is used here (``SQLCompiler.klass_info``, ``select``, ``col_count``,
``annotation_col_map``, ``get_converters`` and ``get_related_populators``, and the converters' calling
convention):
Django is pinned to 5.2 in pyproject.toml, and ``tests/arm/test_compiled.py`` fails when any of it
changes (each query here is checked against the plain queryset's answer).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import date

from django.conf import settings
from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators


def _identity(value):
    return value


def _forms(sentinel) -> list[tuple[object, Callable]]:
    """The forms a sentinel may take among the compiled parameters (a UUID as itself on PostgreSQL, as 32
    hex digits on SQLite; a date as itself or ISO text), each with the conversion of a real argument."""
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
    return f"\x00compiled-{i}\x00"


class CompiledQuery:
    def __init__(self, build: Callable[..., QuerySet], *kinds: type):
        """``build(*args)`` returns the queryset; ``kinds`` are its arguments' types (``uuid.UUID``,
        ``date`` or ``str``)."""
        self._build = build
        self._kinds = kinds
        self._compiled: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def _compile(self, alias: str) -> tuple:
        sentinels = [_sentinel(kind, i) for i, kind in enumerate(self._kinds)]
        compiler = self._build(*sentinels).using(alias).query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        slots = []
        for sentinel in sentinels:
            found = [
                (i, convert)
                for i, param in enumerate(params)
                for form, convert in _forms(sentinel)
                if type(param) is type(form) and param == form
            ]
            if len(found) != 1:
                raise ValueError("CompiledQuery: each argument must appear exactly once among the SQL parameters")
            slots.append(found[0])
        klass_info, select = compiler.klass_info, compiler.select
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        return (
            sql,
            list(params),
            slots,
            klass_info["model"],
            [column[0].target.attname for column in select[start:end]],
            (start, end),
            get_related_populators(klass_info, select, alias),
            dict(compiler.annotation_col_map or {}),
            compiler.get_converters([column[0] for column in select[: compiler.col_count]]),
        )

    def first(self, *args, using: str = "default"):
        """The first row as a model instance (``None`` when there is none)."""
        objects = self.all(*args, using=using)
        return objects[0] if objects else None

    def all(self, *args, using: str = "default") -> list:
        """Every row, as model instances."""
        if not settings.ARM_COMPILED_QUERIES:
            return list(self._build(*args).using(using))
        compiled = self._compiled.get(using)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(using) or self._compile(using)
                self._compiled[using] = compiled
        sql, params, slots, model, init_list, (start, end), populators, annotations, converters = compiled
        params = list(params)
        for (slot, convert), value in zip(slots, args, strict=True):
            params[slot] = convert(value)
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        objects = []
        for row in rows:
            if converters:  # as SQLCompiler.apply_converters, with this thread's connection
                row = list(row)
                for position, (functions, expression) in converters.items():
                    for convert in functions:
                        row[position] = convert(row[position], expression, connection)
            obj = model.from_db(using, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for name, position in annotations.items():
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects
