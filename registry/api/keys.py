"""``/api/v1/api-keys/``: tenancy's key API with POST, which may bind the new key to an instance.

Binding a key is registry's (``registry.InstanceKey``, above tenancy), so creating a key is served here
and goes through ``registry.services.api_key_create``; listing, reading and revoking are
``tenancy.api.views.ApiKeyViewSet``'s."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, status
from rest_framework.response import Response

from arm.schema import ERRORS_WRITE
from registry import services
from registry.models import AgentInstance
from tenancy.api import views as tenancy_views
from tenancy.api.serializers import ApiKeyCreatedSerializer, ApiKeySerializer


@extend_schema_view(
    create=extend_schema(request=ApiKeySerializer, responses={201: ApiKeyCreatedSerializer, **ERRORS_WRITE}),
)
class ApiKeyViewSet(tenancy_views.ApiKeyViewSet):
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        instance = None
        instance_id = data.get("instance_binding", {}).get("instance_id")
        if instance_id is not None:
            instance = AgentInstance.objects.filter(tenant=self.tenant, pk=instance_id).first()
            if instance is None:
                raise exceptions.ValidationError({"instance": "Instance not found in this tenant."})
        key, secret = services.api_key_create(
            tenant=self.tenant, name=data["name"], roles=data["roles"], instance=instance, actor=self.actor
        )
        body = ApiKeySerializer(key).data
        body["key"] = secret
        return Response(body, status=status.HTTP_201_CREATED)
