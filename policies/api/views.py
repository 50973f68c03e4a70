"""Policy API: envelopes (CRUD + simulate), tool-call evaluation, the decision log and a runtime's context.
Views parse and resolve tenant-scoped objects, then call ``policies.services`` (or ``selectors``); no rule is
decided here."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from arm.api import NewestFirstCursorPagination
from arm.schema import ERRORS_READ, ERRORS_WRITE
from policies import selectors, services
from policies.api.serializers import (
    DecisionSerializer,
    EvaluateResponseSerializer,
    EvaluateSerializer,
    PolicySerializer,
    RuntimeContextQuerySerializer,
    RuntimeContextSerializer,
    SimulateSerializer,
    SimulationSerializer,
)
from policies.filtersets import DecisionFilterSet, PolicyFilterSet
from policies.models import PolicyDecision, PolicyEnvelope
from tenancy.viewsets import ListMixin, TenantViewSet


@extend_schema_view(
    list=extend_schema(responses={200: PolicySerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: PolicySerializer, **ERRORS_READ}),
    create=extend_schema(responses={201: PolicySerializer, **ERRORS_WRITE}),
    partial_update=extend_schema(responses={200: PolicySerializer, **ERRORS_WRITE}),
    destroy=extend_schema(responses={204: None, **ERRORS_WRITE}),
)
class PolicyViewSet(ListMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Policy envelopes: every member reads; compliance (or admin) creates, edits, deletes, simulates.
    Attach and detach go through the instance (``PATCH /instances/{id}/ {"policy": id|null}``)."""

    queryset = PolicyEnvelope.objects.all()
    serializer_class = PolicySerializer
    filterset_class = PolicyFilterSet
    write_roles = services.POLICY_WRITE_ROLES
    action_roles = {"simulate": services.POLICY_WRITE_ROLES}
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        policy = services.policy_create(tenant=self.tenant, actor=self.actor, **serializer.validated_data)
        return Response(self.get_serializer(policy).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        policy = self.get_object()
        serializer = self.get_serializer(policy, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        policy = services.policy_update(policy=policy, actor=self.actor, **serializer.validated_data)
        return Response(self.get_serializer(policy).data)

    def destroy(self, request, *args, **kwargs):
        services.policy_delete(policy=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=SimulateSerializer(partial=True), responses={200: SimulationSerializer, **ERRORS_WRITE})
    @action(detail=True, methods=["post"])
    def simulate(self, request, pk=None):
        """What-if: replay the last ``limit`` (default 1000, at most 10000) decisions under this policy
        with the proposed change; counts per outcome and the decisions that flip. Writes nothing."""
        policy = self.get_object()
        serializer = SimulateSerializer(data=request.data, partial=True, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        limit = changes.pop("limit", services.SIMULATION_DEFAULT_LIMIT)
        result = services.policy_simulate(policy=policy, changes=changes, limit=limit, actor=self.actor)
        return Response(SimulationSerializer(result).data)


@extend_schema_view(
    list=extend_schema(responses={200: DecisionSerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: DecisionSerializer, **ERRORS_READ}),
)
class DecisionViewSet(ListMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The decision log: every evaluation, newest first (cursor pagination)."""

    queryset = PolicyDecision.objects.all()
    serializer_class = DecisionSerializer
    filterset_class = DecisionFilterSet
    pagination_class = NewestFirstCursorPagination


class PolicyEvaluateView(APIView):
    """``POST /api/v1/policy/evaluate/``: decide one tool call (SPEC §4). Runtime keys (only for their
    bound instance, if bound), operators and admins."""

    def roles_for(self, request):
        return services.EVALUATE_ROLES

    @extend_schema(
        request=EvaluateSerializer,
        responses={200: EvaluateResponseSerializer, **ERRORS_WRITE},
        operation_id="policy_evaluate",
    )
    def post(self, request):
        serializer = EvaluateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = services.policy_evaluate(
            tenant=request.arm_tenant,
            instance_id=data["instance"],
            tool=data["tool"],
            params=data["params"],
            data_scopes=data["data_scopes"],
            estimated_cost_usd=data["estimated_cost_usd"],
            approval_id=data["approval"],
            idempotency_key=data["idempotency_key"],
            actor=request.arm_actor,
        )
        return Response(result.as_response())


class RuntimeContextView(APIView):
    """``GET /api/v1/runtime/context/``: what a runtime may know of itself (``selectors.runtime_context``). A
    key bound to an instance reads its own; other keys and members name one with ``?instance=``."""

    def roles_for(self, request):
        return selectors.RUNTIME_CONTEXT_ROLES

    @extend_schema(
        parameters=[RuntimeContextQuerySerializer],
        responses={200: RuntimeContextSerializer, **ERRORS_READ},
        operation_id="runtime_context",
    )
    def get(self, request):
        query = RuntimeContextQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        context = selectors.runtime_context(
            tenant=request.arm_tenant, actor=request.arm_actor, instance_id=query.validated_data.get("instance")
        )
        return Response(context)
