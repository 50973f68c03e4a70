"""Registry REST API. Views parse input, resolve tenant-scoped objects and call ``registry.services``;
they never decide a rule themselves."""

from django.db.models import ExpressionWrapper, F, TextField
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from arm.schema import ERRORS_READ, ERRORS_WRITE, ErrorSerializer
from arm.validators import as_uuid
from registry import selectors, services
from registry.api.serializers import (
    EnvironmentSerializer,
    EvaluationSerializer,
    HeartbeatBatchResponseSerializer,
    HeartbeatBatchSchemaSerializer,
    HeartbeatBatchSerializer,
    HeartbeatResponseSerializer,
    HeartbeatSerializer,
    InstanceSerializer,
    InstanceTransitionSerializer,
    LineageSerializer,
    ProviderSerializer,
    TemplateSerializer,
    VersionDetailSerializer,
    VersionSerializer,
    VersionTransitionSerializer,
)
from registry.filtersets import (
    EnvironmentFilterSet,
    EvaluationFilterSet,
    InstanceFilterSet,
    ProviderFilterSet,
    TemplateFilterSet,
    VersionFilterSet,
)
from registry.models import AgentInstance, AgentTemplate, AgentVersion, Environment, Provider
from tenancy.viewsets import ListMixin, TenantViewSet

IMMUTABLE_VERSION = "Versions are write-once: the genome and its hash never change and versions are never deleted."


class CreateUpdateMixin:
    """POST/PATCH through ``create_service``/``update_service``; PUT is not offered."""

    create_service = None
    update_service = None
    update_kwarg = None
    http_method_names = ["get", "post", "patch", "head", "options"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        obj = type(self).create_service(tenant=self.tenant, actor=self.actor, **serializer.validated_data)
        return Response(self.get_serializer(obj).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        obj = self.get_object()
        serializer = self.get_serializer(obj, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        obj = type(self).update_service(**{self.update_kwarg: obj}, actor=self.actor, **serializer.validated_data)
        return Response(self.get_serializer(obj).data)


@extend_schema_view(
    list=extend_schema(responses={200: EnvironmentSerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: EnvironmentSerializer, **ERRORS_READ}),
    create=extend_schema(responses={201: EnvironmentSerializer, **ERRORS_WRITE}),
    partial_update=extend_schema(responses={200: EnvironmentSerializer, **ERRORS_WRITE}),
)
class EnvironmentViewSet(CreateUpdateMixin, ListMixin, mixins.RetrieveModelMixin, TenantViewSet):
    queryset = Environment.objects.all()
    serializer_class = EnvironmentSerializer
    filterset_class = EnvironmentFilterSet
    create_service = services.environment_create
    update_service = services.environment_update
    update_kwarg = "environment"


@extend_schema_view(
    list=extend_schema(responses={200: ProviderSerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: ProviderSerializer, **ERRORS_READ}),
    create=extend_schema(responses={201: ProviderSerializer, **ERRORS_WRITE}),
    partial_update=extend_schema(responses={200: ProviderSerializer, **ERRORS_WRITE}),
)
class ProviderViewSet(CreateUpdateMixin, ListMixin, mixins.RetrieveModelMixin, TenantViewSet):
    queryset = Provider.objects.all()
    serializer_class = ProviderSerializer
    filterset_class = ProviderFilterSet
    create_service = services.provider_create
    update_service = services.provider_update
    update_kwarg = "provider"


@extend_schema_view(
    list=extend_schema(responses={200: TemplateSerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: TemplateSerializer, **ERRORS_READ}),
    create=extend_schema(responses={201: TemplateSerializer, **ERRORS_WRITE}),
    partial_update=extend_schema(responses={200: TemplateSerializer, **ERRORS_WRITE}),
    destroy=extend_schema(responses={204: None, **ERRORS_WRITE}),
)
class TemplateViewSet(CreateUpdateMixin, ListMixin, mixins.RetrieveModelMixin, TenantViewSet):
    queryset = AgentTemplate.objects.all()
    serializer_class = TemplateSerializer
    filterset_class = TemplateFilterSet
    create_service = services.template_create
    update_service = services.template_update
    update_kwarg = "template"
    http_method_names = [*CreateUpdateMixin.http_method_names, "delete"]

    def destroy(self, request, *args, **kwargs):
        services.template_delete(template=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(responses={200: VersionSerializer(many=True), **ERRORS_READ}),
    create=extend_schema(request=VersionSerializer, responses={201: VersionSerializer, **ERRORS_WRITE}),
)
class VersionViewSet(ListMixin, TenantViewSet):
    """Versions are created, read and transitioned; never edited or deleted: PUT, PATCH and DELETE answer
    405 ``method_not_allowed`` and ``Allow`` lists only what a version resource supports."""

    queryset = AgentVersion.objects.all()
    http_method_names = ["get", "post", "head", "options"]
    serializer_class = VersionSerializer
    filterset_class = VersionFilterSet
    action_roles = {
        "transition": None,  # the service checks the role of the specific transition
        "evaluations": None,
        "lineage": TenantViewSet.read_roles,
        "diff": TenantViewSet.read_roles,
    }

    def get_serializer_class(self):
        return VersionDetailSerializer if self.action == "retrieve" else VersionSerializer

    def get_queryset(self):
        qs = super().get_queryset()
        if self.action == "list":
            # The genome as plain stored text: the list embeds it verbatim once it is checked to be one
            # readable JSON object (``serializers.stored_genome_json``): no dict kept per row, no re-serializing.
            qs = qs.defer("genome").annotate(genome_text=ExpressionWrapper(F("genome"), output_field=TextField()))
        return qs

    def create(self, request, *args, **kwargs):
        serializer = VersionSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        version = services.version_create(
            tenant=self.tenant,
            template=data["template"],
            version_label=data["version_label"],
            genome=data["genome"],
            parent=data.get("parent"),
            actor=self.actor,
        )
        return Response(VersionSerializer(version, context=self.get_serializer_context()).data, status=201)

    @extend_schema(responses={200: VersionDetailSerializer, **ERRORS_READ})
    def retrieve(self, request, *args, **kwargs):
        """Every detail read recomputes the genome hash and records INTEGRITY_VERIFIED / INTEGRITY_FAILED."""
        version = self.get_object()
        result = services.version_verify_integrity(version=version, actor=self.actor)
        context = {**self.get_serializer_context(), "integrity": result}
        return Response(VersionDetailSerializer(version, context=context).data)

    def http_method_not_allowed(self, request, *args, **kwargs):
        if request.method.lower() in {"put", "patch", "delete"}:
            raise exceptions.MethodNotAllowed(request.method, detail=IMMUTABLE_VERSION)
        return super().http_method_not_allowed(request, *args, **kwargs)

    @extend_schema(request=VersionTransitionSerializer, responses={200: VersionSerializer, **ERRORS_WRITE})
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        version = self.get_object()  # a version this tenant does not have is a 404 whatever the body
        serializer = VersionTransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.version_transition(version=version, actor=self.actor, **serializer.validated_data)
        return Response(VersionSerializer(version, context=self.get_serializer_context()).data)

    @extend_schema(responses={200: LineageSerializer, **ERRORS_READ}, filters=False)
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def lineage(self, request, pk=None):
        """Ancestors up to the root, nearest first, plus the direct children."""
        version = self.get_object()
        context = self.get_serializer_context()
        return Response(
            {
                "version": str(version.pk),
                "ancestors": VersionSerializer(selectors.version_lineage(version), many=True, context=context).data,
                "children": VersionSerializer(selectors.version_children(version), many=True, context=context).data,
            }
        )

    @extend_schema(
        parameters=[OpenApiParameter("against", OpenApiTypes.UUID, required=False)],
        responses={
            200: OpenApiTypes.OBJECT,
            **ERRORS_READ,
            409: OpenApiResponse(
                ErrorSerializer,
                description="genome_unreadable: a stored genome breaks the genome rules (its row was edited in "
                "the database) and is not compared.",
            ),
        },
        filters=False,
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def diff(self, request, pk=None):
        """Genome diff from ``against`` (default: the parent) to this version; same template only."""
        version = self.get_object()
        against = request.query_params.get("against") or (str(version.parent_id) if version.parent_id else None)
        if not against:
            # Nothing to compare against (not a malformed request): 404, like an unknown ``against``.
            raise exceptions.NotFound("This version has no parent to compare against: give ?against=<version id>.")
        other = self.get_queryset().filter(pk=_uuid_or_400(against, "against")).first()
        if other is None:
            raise exceptions.NotFound("The version to compare against was not found.")
        if other.template_id != version.template_id:
            raise exceptions.ValidationError({"against": "Diffs compare versions of the same template."})
        return Response(selectors.version_diff(version, other))

    @extend_schema(methods=["get"], responses={200: EvaluationSerializer(many=True), **ERRORS_READ}, filters=False)
    @extend_schema(
        methods=["post"], request=EvaluationSerializer, responses={201: EvaluationSerializer, **ERRORS_WRITE}
    )
    @action(detail=True, methods=["get", "post"], filterset_class=EvaluationFilterSet)
    def evaluations(self, request, pk=None):
        # Not self.get_object(): this action's filterset is the evaluations', which cannot filter versions.
        version = get_object_or_404(self.get_queryset(), pk=pk)
        if request.method == "POST":
            serializer = EvaluationSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            result = services.evaluation_record(version=version, actor=self.actor, **serializer.validated_data)
            return Response(EvaluationSerializer(result).data, status=status.HTTP_201_CREATED)
        from tenancy.permissions import require_roles

        require_roles(self.actor, TenantViewSet.read_roles, "Reading evaluation results")
        results = EvaluationFilterSet(request.query_params, version.evaluations.all(), request=request)
        if not results.is_valid():
            raise exceptions.ValidationError(results.errors)
        page = self.paginate_queryset(results.qs)
        return self.get_paginated_response(EvaluationSerializer(page, many=True).data)


def _uuid_or_400(value, field):
    pk = as_uuid(value)
    if pk is None:
        raise exceptions.ValidationError({field: "Expected a version id (UUID)."})
    return pk


@extend_schema_view(
    list=extend_schema(responses={200: InstanceSerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: InstanceSerializer, **ERRORS_READ}),
)
class InstanceViewSet(ListMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The instance API but its writes that bind a policy: ``/api/v1/instances/`` is served by
    ``policies.api.instances.InstanceViewSet``, which adds create and PATCH (a deployment may choose its
    policy, and attaching one is policies' rule)."""

    queryset = AgentInstance.objects.all()
    serializer_class = InstanceSerializer
    filterset_class = InstanceFilterSet
    http_method_names = ["get", "post", "patch", "head", "options"]
    action_roles = {
        "transition": None,
        "partial_update": None,  # name needs operator, policy needs compliance: the services decide
        "heartbeat": None,
        "heartbeats": None,
    }

    def get_queryset(self):
        # The policy the serializer shows comes in the same query (``policy_attachment``, policies').
        return super().get_queryset().select_related("policy_attachment")

    @extend_schema(request=InstanceTransitionSerializer, responses={200: InstanceSerializer, **ERRORS_WRITE})
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        instance = self.get_object()
        serializer = InstanceTransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = services.instance_transition(instance=instance, actor=self.actor, **serializer.validated_data)
        return Response(self.get_serializer(instance).data)

    @extend_schema(
        request=HeartbeatSerializer,
        responses={200: HeartbeatResponseSerializer, **ERRORS_WRITE},
    )
    @action(detail=True, methods=["post"])
    def heartbeat(self, request, pk=None):
        """A single UPDATE (no change record: the documented exception for the hottest write path)."""
        # No body or a JSON null: an empty heartbeat; anything but an object otherwise is a 400.
        serializer = HeartbeatSerializer(data={} if request.data is None else request.data)
        serializer.is_valid(raise_exception=True)
        at = services.instance_heartbeat(
            tenant=self.tenant, instance_id=pk, status=serializer.validated_data.get("status"), actor=self.actor
        )
        return Response({"id": pk, "last_heartbeat_at": at, "health": "healthy"})

    @extend_schema(
        request=HeartbeatBatchSchemaSerializer,
        responses={200: HeartbeatBatchResponseSerializer, **ERRORS_WRITE},
        description=f"More than {services.MAX_HEARTBEATS_PER_BATCH} instances is 413 too_many_instances, before "
        "anything is written.",
    )
    @action(detail=False, methods=["post"])
    def heartbeats(self, request):
        """Up to 1000 heartbeats in one UPDATE (see ``services.instance_heartbeats``)."""
        serializer = HeartbeatBatchSerializer(data={} if request.data is None else request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        at, results = services.instance_heartbeats(
            tenant=self.tenant, instance_ids=data["instances"], status=data.get("status"), actor=self.actor
        )
        counts = {"ok": 0, "not_found": 0, "retired": 0}
        for result in results.values():
            counts[result] += 1
        return Response(
            {
                "last_heartbeat_at": at,
                **counts,
                "results": [{"id": pk, "result": result} for pk, result in results.items()],
            }
        )

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}
