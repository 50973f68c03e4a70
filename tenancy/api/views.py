"""The API key endpoints: tenant admins list and revoke any key; every member mints and revokes keys acting
for them."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.response import Response

from arm.schema import ERRORS_READ, ERRORS_WRITE
from tenancy import services
from tenancy.api.serializers import ApiKeySerializer
from tenancy.choices import READ_ROLES, Role
from tenancy.filtersets import ApiKeyFilterSet
from tenancy.models import ApiKey
from tenancy.viewsets import ListMixin, TenantViewSet


@extend_schema_view(
    list=extend_schema(responses={200: ApiKeySerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: ApiKeySerializer, **ERRORS_READ}),
    destroy=extend_schema(responses={200: ApiKeySerializer, **ERRORS_WRITE}),
)
class ApiKeyViewSet(ListMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Tenant admins list and revoke every key of the tenant. Any member may POST a key for themselves
    (roles within their own; it acts for them) and DELETE keys acting for them. DELETE revokes (the row
    stays for the audit trail). ``/api/v1/api-keys/`` is served by ``registry.api.keys.ApiKeyViewSet``,
    which adds POST: a key may be bound to an instance, and that binding is registry's."""

    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    read_roles = (Role.ADMIN,)
    write_roles = (Role.ADMIN,)
    # The service decides whose key a member may revoke (their own) and which roles they may grant.
    action_roles = {"create": READ_ROLES, "destroy": READ_ROLES}
    filterset_class = ApiKeyFilterSet
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self):
        # The instance the serializer shows comes in the same query (registry's ``instance_binding``).
        return super().get_queryset().select_related("instance_binding")

    def destroy(self, request, *args, **kwargs):
        key = services.api_key_revoke(key=self.get_object(), actor=self.actor)
        return Response(ApiKeySerializer(key).data)
