"""The tenant-scoped base viewset every domain API builds on."""

import uuid

from django.http import Http404
from rest_framework import viewsets

from arm.choices import READ_ROLES, Role
from arm.permissions import default_roles_for


class TenantViewSet(viewsets.GenericViewSet):
    """Base for every domain API viewset: querysets start from the request's tenant, roles per action.

    Subclasses set ``queryset``, ``serializer_class``, ``filterset_class`` and the role sets.
    """

    read_roles = READ_ROLES
    write_roles = (Role.OPERATOR,)
    action_roles: dict = {}
    lookup_value_regex = "[^/]+"

    @property
    def tenant(self):
        return self.request.arm_tenant

    @property
    def actor(self):
        return self.request.arm_actor

    def roles_for(self, request):
        return default_roles_for(self, request, self.read_roles, self.write_roles)

    def get_queryset(self):
        return super().get_queryset().filter(tenant=self.tenant)

    def get_prepared_object(self, query):
        """``get_object()`` through an ``arm.prepared.PreparedQuery`` taking (tenant id, object id), for a
        detail read on a hot path: the same tenant scope and object permissions, compiled once. Another
        tenant's object, or an id that is not a UUID, is a 404 as with ``get_object()``."""
        try:
            pk = uuid.UUID(str(self.kwargs[self.lookup_url_kwarg or self.lookup_field]))
        except ValueError:
            raise Http404 from None
        obj = query.first(self.tenant.pk, pk)
        if obj is None:
            raise Http404
        self.check_object_permissions(self.request, obj)
        return obj

    def filter_queryset(self, queryset):
        """List filters (django-filter) apply to lists only. DRF also runs them in ``get_object``, which
        built and validated a FilterSet form on every detail read and write (a third of a transition's
        time, profiled) to filter by query parameters a single-object URL does not take."""
        if self.lookup_url_kwarg in self.kwargs or self.lookup_field in self.kwargs:
            return queryset
        return super().filter_queryset(queryset)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if hasattr(self.request, "arm_tenant"):
            context["tenant"] = self.request.arm_tenant
        return context
