"""The API key endpoints: tenant admins list and revoke any key; every member mints and revokes keys acting
for them."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from arm.schema import ERRORS_READ, ERRORS_WRITE
from tenancy import services
from tenancy.api.serializers import ApiKeyCreatedSerializer, ApiKeySerializer
from tenancy.choices import READ_ROLES, Role
from tenancy.filtersets import ApiKeyFilterSet
from tenancy.models import ApiKey
from tenancy.viewsets import ListMixin, TenantViewSet


@extend_schema_view(
    list=extend_schema(responses={200: ApiKeySerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: ApiKeySerializer, **ERRORS_READ}),
    create=extend_schema(request=ApiKeySerializer, responses={201: ApiKeyCreatedSerializer, **ERRORS_WRITE}),
    destroy=extend_schema(responses={200: ApiKeySerializer, **ERRORS_WRITE}),
)
class ApiKeyViewSet(ListMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Tenant admins list and revoke every key of the tenant. Any member may POST a key for themselves
    (roles within their own; it acts for them) and DELETE keys acting for them. DELETE revokes (the row
    stays for the audit trail)."""

    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    read_roles = (Role.ADMIN,)
    write_roles = (Role.ADMIN,)
    # The service decides whose key a member may revoke (their own) and which roles they may grant.
    action_roles = {"create": READ_ROLES, "destroy": READ_ROLES}
    filterset_class = ApiKeyFilterSet
    http_method_names = ["get", "post", "delete", "head", "options"]

    def create(self, request, *args, **kwargs):
        from registry.models import AgentInstance

        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        instance = None
        if data.get("instance_id"):
            instance = AgentInstance.objects.filter(tenant=self.tenant, pk=data["instance_id"]).first()
            if instance is None:
                raise serializers.ValidationError({"instance": "Instance not found in this tenant."})
        key, secret = services.api_key_create(
            tenant=self.tenant, name=data["name"], roles=data["roles"], instance=instance, actor=self.actor
        )
        body = ApiKeySerializer(key).data
        body["key"] = secret
        return Response(body, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        key = services.api_key_revoke(key=self.get_object(), actor=self.actor)
        return Response(ApiKeySerializer(key).data)
