"""``/api/v1/instances/``: registry's instance API with the writes that bind a policy.

The policy an instance runs under is policies' (``policies.PolicyAttachment``), so the instance API's
create (a deployment may name its policy) and PATCH (``{"policy": id|null}`` attaches or detaches) are
served here, above registry, and call ``policies.services``; everything else is
``registry.api.views.InstanceViewSet``'s."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.response import Response

from arm.schema import ERRORS_WRITE
from policies import services
from policies.models import PolicyEnvelope
from registry import services as registry_services
from registry.api import views as registry_views
from registry.api.serializers import InstanceSerializer, InstanceUpdateSerializer
from tenancy.scoping import scoped


@extend_schema_view(
    create=extend_schema(responses={201: InstanceSerializer, **ERRORS_WRITE}),
    partial_update=extend_schema(request=InstanceUpdateSerializer, responses={200: InstanceSerializer, **ERRORS_WRITE}),
)
class InstanceViewSet(mixins.CreateModelMixin, registry_views.InstanceViewSet):
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        policy = self._policy(data.pop("policy_attachment", {}).get("policy_id"))
        instance = services.instance_create(tenant=self.tenant, actor=self.actor, policy=policy, **data)
        return Response(self.get_serializer(instance).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        instance = self.get_object()
        serializer = InstanceUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "name" in data:
            instance = registry_services.instance_update(instance=instance, name=data["name"], actor=self.actor)
        if "policy" in data:
            instance = services.policy_attach(instance=instance, policy=self._policy(data["policy"]), actor=self.actor)
        return Response(self.get_serializer(instance).data)

    def _policy(self, policy_id) -> PolicyEnvelope | None:
        if policy_id is None:
            return None
        policy = scoped(PolicyEnvelope.objects.filter(pk=policy_id), self.tenant).first()
        if policy is None:
            raise exceptions.ValidationError({"policy": "Policy not found in this tenant."})
        return policy
