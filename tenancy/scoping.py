"""Tenant scoping, spelled one way: ``scoped(queryset, tenant)``.

Every read that starts from a request's or a command's tenant goes through it: API viewsets
(``TenantViewSet.get_queryset`` and its prepared lookup), UI pages (``scoped(qs, request.arm_tenant)``,
``scoped_get`` for one object), the admin (the tenants its user administers) and commands. Code that
already holds a tenant-owned row follows its relations like any other (``version.instances``)."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import Http404

from tenancy.models import Tenant


def scoped(queryset, tenant):
    """The rows of ``queryset`` that belong to ``tenant``: a ``Tenant``, its id, or several ids (the admin
    spans every tenant its user administers). Tenants are scoped by id and users by membership; a model
    without a ``tenant`` key gives nothing, so a new model cannot leak through here by default."""
    many = isinstance(tenant, Iterable) and not isinstance(tenant, str | bytes)
    ids = [getattr(t, "pk", t) for t in tenant] if many else [getattr(tenant, "pk", tenant)]
    model = queryset.model
    if issubclass(model, Tenant):
        key = "pk"
    elif any(f.name == "tenant" for f in model._meta.concrete_fields):
        key = "tenant_id"
    elif issubclass(model, get_user_model()):
        return queryset.filter(memberships__tenant_id__in=ids).distinct()
    else:
        return queryset.none()
    return queryset.filter(**{f"{key}__in": ids}) if many else queryset.filter(**{key: ids[0]})


def scoped_get(queryset, tenant, pk):
    """One row of ``tenant``, or 404: another tenant's id looks exactly like a missing one."""
    try:
        return scoped(queryset, tenant).get(pk=pk)
    except (queryset.model.DoesNotExist, ValidationError, ValueError) as exc:
        raise Http404("Not found") from exc
