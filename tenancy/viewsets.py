"""The tenant-scoped base viewset every domain API builds on."""

import uuid

from django.http import Http404
from rest_framework import mixins, viewsets

from tenancy.choices import READ_ROLES, Role
from tenancy.permissions import default_roles_for
from tenancy.scoping import scoped


class TenantViewSet(viewsets.GenericViewSet):
    """Base for every domain API viewset: querysets start from the request's tenant, roles per action.

    Subclasses set ``queryset``, ``serializer_class``, ``filterset_class`` and the role sets.
    """

    read_roles = READ_ROLES
    write_roles = (Role.OPERATOR,)
    action_roles: dict = {}
    lookup_value_regex = "[^/]+"

    @classmethod
    def as_view(cls, actions=None, **initkwargs):
        # drf-spectacular's ``@extend_schema`` on an ``@action`` hands its schema class to the router as an
        # initkwarg, and DRF's schema descriptor, given it on each request's view, stores that view on the
        # class (``ExtendedSchema.view = view``): a module-level class then held the last request of each
        # action (view, request, serializers, model objects) until the next one, so every such request
        # outlived the collection of its garbage cycles (see ``arm.runtime``). Requests never read the
        # schema; drf-spectacular sets it itself when it generates the document (``create_view``).
        initkwargs.pop("schema", None)
        return super().as_view(actions, **initkwargs)

    @property
    def tenant(self):
        return self.request.arm_tenant

    @property
    def actor(self):
        return self.request.arm_actor

    def roles_for(self, request):
        return default_roles_for(self, request, self.read_roles, self.write_roles)

    def get_queryset(self):
        return scoped(super().get_queryset(), self.tenant.pk)

    def get_lookup_id(self) -> uuid.UUID:
        """The URL's id; one that is not a UUID is a 404, as with ``get_object()``."""
        try:
            return uuid.UUID(str(self.kwargs[self.lookup_url_kwarg or self.lookup_field]))
        except ValueError:
            raise Http404 from None

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


class ListMixin(mixins.ListModelMixin):
    """``GET`` on a collection, every API list's."""
