"""Audit reads shared by the UI and API.

Records name their target by type and id (``AgentVersion e4883335-…``); people read names. ``label_targets``
resolves the targets of one page of records with one query per target type present on the page (never one
per row), by model class name at run time, since every app sits above ``audit``. A target deleted since
keeps its short id (``e4883335…``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from audit.models import ChangeRecord

# How a target reads, and the relations that reading needs (fetched in the same query). A type not listed
# reads as its ``name`` when it has one, else as ``str()``.
_LABELS: dict[str, tuple[tuple[str, ...], Callable]] = {
    "AgentVersion": (("template",), lambda o: f"{o.template.name}@{o.version_label}"),
    "AgentInstance": ((), str),
    "ApprovalRequest": (("instance",), lambda o: f"{o.tool} on {o.instance.name}"),
    "Membership": (("user",), lambda o: o.user.get_username()),
    "ApiKey": ((), lambda o: f'key "{o.name}"'),
    "EvaluationResult": (("version__template",), lambda o: f"{o.suite} on {o.version}"),
    "Tenant": ((), lambda o: o.slug),
    "User": ((), lambda o: o.get_username()),
}


def object_history(obj, limit: int = 25) -> list[ChangeRecord]:
    """The newest change records about one domain object (scoped to the object's own tenant; served by
    the (tenant, target_type, target_id) index), with those of the rows an app above binds to it by
    primary key (an instance's ``policies.PolicyAttachment``: attaching and detaching its policy)."""
    return list(
        ChangeRecord.objects.filter(
            tenant_id=obj.tenant_id, target_type__in=_types_of(type(obj)), target_id=str(obj.pk)
        ).order_by("-seq")[:limit]
    )


def _types_of(model) -> list[str]:
    """``model``'s name and those of the models whose primary key is a one-to-one to it."""
    bound = (m for m in apps.get_models() if m._meta.pk.is_relation and m._meta.pk.related_model is model)
    return [model.__name__, *(m.__name__ for m in bound)]


def short_id(target_id: str) -> str:
    return f"{target_id[:8]}…" if len(target_id) > 8 else target_id


def _model(target_type: str):
    if target_type == "User":
        return get_user_model()
    return next((m for m in apps.get_models() if m.__name__ == target_type), None)


def _default_label(obj) -> str:
    name = getattr(obj, "name", None)
    return name if isinstance(name, str) and name else str(obj)


def target_labels(records: Iterable[ChangeRecord]) -> dict[tuple[str, str], str]:
    """``{(target_type, target_id): name}`` for the targets of ``records`` that still exist: one query per
    target type (within the records' tenants)."""
    wanted: dict[str, set[str]] = defaultdict(set)
    tenants: dict[str, set] = defaultdict(set)
    for r in records:
        if r.target_id:
            wanted[r.target_type].add(r.target_id)
            tenants[r.target_type].add(r.tenant_id)
    labels: dict[tuple[str, str], str] = {}
    for target_type, ids in wanted.items():
        model = _model(target_type)
        if model is None:
            continue
        pk_field = model._meta.pk
        by_pk: dict = defaultdict(list)  # the pk each recorded id means (ids are recorded as str(pk))
        for target_id in ids:
            try:
                by_pk[pk_field.to_python(target_id)].append(target_id)
            except (ValidationError, TypeError, ValueError):
                continue  # not an id of this model (a batch key, say): it keeps its text
        if not by_pk:
            continue
        related, label = _LABELS.get(target_type, ((), _default_label))
        qs = model._default_manager.filter(pk__in=list(by_pk)).select_related(*related)
        if model.__name__ == "Tenant":
            qs = qs.filter(pk__in=tenants[target_type])
        elif any(f.name == "tenant" for f in model._meta.fields):
            qs = qs.filter(tenant_id__in=tenants[target_type])
        for obj in qs:
            for target_id in by_pk.get(obj.pk, ()):
                labels[(target_type, target_id)] = label(obj)
    return labels


def label_targets(records: list[ChangeRecord]) -> list[ChangeRecord]:
    """Set ``target_label`` on each record: its target's name, or its short id when the target is gone."""
    labels = target_labels(records)
    for r in records:
        r.target_label = labels.get((r.target_type, r.target_id)) or short_id(r.target_id or "")
    return records
