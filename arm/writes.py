"""The write plumbing every domain service shares: validate a model object reporting every error at once,
save it with a unique-constraint race lost at the database reported as the same error, and the one
update path (lock the row, apply the fields, validate, save inside the service's change record).

The services keep what is theirs: the role check, the fields a caller may write and the change record
(the audit app's context manager, passed in as ``record``: this bottom layer knows nothing of audit).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, UniqueConstraint
from django_fsm import FSMField

from arm.errors import AlreadyTaken


def validate(obj, *, exclude: Iterable[str] = (), unique: bool = True, constraints: bool = False) -> None:
    """Every problem of ``obj`` in one error: its fields and ``clean()``, then each of its unique
    constraints (one query each) whose fields passed. A value already taken is reported on its field (the
    API reports errors per field), and when nothing else is wrong the error is ``AlreadyTaken`` (409 in
    the API: the request is valid, the tenant's data conflicts).

    ``exclude``: fields not to validate (checked by the caller, or foreign keys to rows the caller just
    read); unique constraints still see them. ``unique=False``: the caller inserts and turns the unique
    violation into the same error itself. Check constraints are left to the database: Django would run a
    query for each, and ours restate what the fields and ``clean()`` already check (``constraints=True``: a
    model whose check constraints say more, such as the ledger's, has them checked too, their messages
    reported as Django's ``full_clean`` reports them). So are Django's ``unique=True`` checks: the only
    such field is a fresh UUID primary key its constraint guards."""
    # Protected FSM fields refuse the re-assignment clean_fields() makes; transitions guard them instead.
    skip = {*exclude, *(f.name for f in obj._meta.fields if isinstance(f, FSMField))}
    errors: dict = {}
    try:
        obj.full_clean(exclude=sorted(skip), validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        errors = exc.update_error_dict(errors)
    if constraints:
        for constraint in obj._meta.constraints:
            if not isinstance(constraint, UniqueConstraint):
                try:
                    constraint.validate(type(obj), obj, exclude={*skip, *errors})
                except ValidationError as exc:
                    errors.setdefault(NON_FIELD_ERRORS, []).extend(exc.error_list)
    taken = _taken(obj, exclude=set(errors)) if unique else {}
    if taken and not errors:
        raise AlreadyTaken(taken)
    for field, messages in taken.items():
        errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)


def _taken(obj, *, exclude: set) -> dict[str, list]:
    """{field: [message]} for each unique constraint ``obj`` would break, skipping those over ``exclude``."""
    taken: dict[str, list] = {}
    for constraint in obj._meta.constraints:
        if isinstance(constraint, UniqueConstraint):
            try:
                constraint.validate(type(obj), obj, exclude=exclude)
            except ValidationError as exc:
                taken.setdefault(_constraint_field(constraint) or NON_FIELD_ERRORS, []).extend(exc.error_list)
    return taken


def _constraint_field(constraint: UniqueConstraint) -> str | None:
    """The field a unique constraint's error belongs to: its last field, or the field under its last
    expression (``Lower("name")`` in ``F("tenant"), Lower("name")``)."""
    if constraint.fields:
        return constraint.fields[-1]
    names = [name for expression in constraint.expressions for name in _field_names(expression)]
    return names[-1] if names else None


def _field_names(expression):
    if isinstance(expression, F):
        yield expression.name
    for source in getattr(expression, "get_source_expressions", list)():
        yield from _field_names(source)


def save(obj, **kwargs) -> None:
    """``obj.save(**kwargs)`` in a savepoint. A unique constraint broken at the database (a concurrent
    writer took the value after ``validate`` passed) is the error ``validate`` gives: the constraints are
    checked again, and under READ COMMITTED they now see the winner, which has committed (PostgreSQL
    reports the violation only then). Any other integrity error is not ours to explain: it propagates."""
    try:
        with transaction.atomic():
            obj.save(**kwargs)
    except IntegrityError as exc:
        taken = _taken(obj, exclude=set())
        if not taken:
            raise
        raise AlreadyTaken(taken) from exc


def refuse_unknown(data: dict, fields: Iterable[str]) -> None:
    """A service writes only its ``fields``: any other key is a 400 naming it, before anything is read."""
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValidationError({key: "Unknown or read-only field." for key in unknown})


def field_values(obj, fields: Iterable[str]) -> dict:
    return {f: getattr(obj, f) for f in fields}


Record = Callable[[object, dict, dict], AbstractContextManager | None]


def update(
    obj,
    changes: dict,
    fields: Iterable[str],
    *,
    record: Record,
    queryset=None,
    snapshot: Callable[[object], dict] | None = None,
    validator: Callable[[object], None] = validate,
):
    """The one update path: in a transaction, lock ``obj``'s row (from ``queryset``, default the model's
    manager), set ``changes`` (keys outside ``fields`` are ignored: the service refuses them first when it
    must), run ``validator``, then ``record(obj, before, after)`` with the snapshots (``snapshot``, default the
    ``fields``' values): the change record's context manager, under which the object is saved, or None
    when nothing changed, and then nothing is written. Returns the locked, updated object."""
    fields = tuple(fields)
    take = snapshot or (lambda o: field_values(o, fields))
    with transaction.atomic():
        obj = (queryset if queryset is not None else type(obj).objects).select_for_update().get(pk=obj.pk)
        before = take(obj)
        for key, value in changes.items():
            if key in fields:
                setattr(obj, key, value)
        validator(obj)
        described = record(obj, before, take(obj))
        if described is not None:
            with described:
                save(obj)
    return obj


def validate_given(obj, data: dict, fields: Iterable[str], *, exclude: Iterable[str] = ()) -> None:
    """What saving ``data`` onto ``obj`` (a row, or a new unsaved object) would refuse, writing nothing: for a
    form that rejected some of its fields, so one submit shows every problem. ``data``'s fields are set on
    a copy of ``obj``; the rest of ``fields`` (the ones the form could not read) go back to their defaults
    and are not validated, and errors about them are dropped: the form has its own there."""
    probe = copy.copy(obj)
    missing = [f for f in fields if f not in data]
    for name in fields:
        setattr(probe, name, data[name] if name in data else probe._meta.get_field(name).get_default())
    try:
        validate(probe, exclude=[*exclude, *missing])
    except ValidationError as exc:
        errors = {field: messages for field, messages in exc.error_dict.items() if field not in missing}
        if errors:
            raise type(exc)(errors) from exc
