"""Ledger REST API: the usage endpoint (batches in, the ledger's entries out), prices and budgets (with
their alerts). Views parse the request and resolve tenant-scoped objects, then call the ledger's
services (``ledger.ingest``, ``ledger.prices``, ``ledger.budgets``);
no rule is decided here."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView, get_object_or_404
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from arm.api import NewestFirstCursorPagination
from arm.schema import ERRORS_READ, ERRORS_WRITE, ErrorSerializer
from ledger import budgets, ingest, prices, selectors
from ledger.api.serializers import (
    BudgetAlertSerializer,
    BudgetDetailSerializer,
    BudgetSerializer,
    PriceSerializer,
    UsageBatchInputSerializer,
    UsageBatchResultSerializer,
    UsageBatchSerializer,
    UsageEntrySerializer,
)
from ledger.choices import LEDGER_WRITE_ROLES, UsageSource
from ledger.filtersets import BudgetAlertFilterSet, BudgetFilterSet, PriceFilterSet, UsageEntryFilterSet
from ledger.models import Budget, BudgetAlert, Price, UsageEntry
from registry.models import AgentTemplate
from tenancy.choices import READ_ROLES
from tenancy.scoping import scoped
from tenancy.viewsets import ListMixin, TenantViewSet

USAGE_TOO_LARGE = OpenApiResponse(
    ErrorSerializer,
    description=f"More than {ingest.MAX_ENTRIES_PER_BATCH} entries (too_many_entries) or a body over the "
    "size limit (payload_too_large): refused whole, nothing stored. Split the batch.",
)


class UsageCursorPagination(NewestFirstCursorPagination):
    ordering = "-occurred_at"  # the (tenant | instance, -occurred_at) indexes


class UsageView(ListMixin, GenericAPIView):
    """``POST /api/v1/usage/``: a batch of usage entries (operator or runtime; a bound key only for its
    instance). At most ``MAX_ENTRIES_PER_BATCH`` entries: more is 413 ``too_many_entries`` before anything
    is read or written, so one request is at most one ingestion batch. Always 200 with per-entry results
    once the batch itself is well formed.

    ``GET /api/v1/usage/``: the tenant's entries, newest first (cursor pagination), filtered by instance,
    template, provider, model, cost source, source and time range; every member reads (runtime keys
    report, they do not read the ledger)."""

    queryset = UsageEntry.objects.all()
    serializer_class = UsageEntrySerializer
    filterset_class = UsageEntryFilterSet
    pagination_class = UsageCursorPagination

    def roles_for(self, request):
        return READ_ROLES if request.method in SAFE_METHODS else ingest.USAGE_ROLES

    def get_queryset(self):
        return scoped(super().get_queryset(), self.request.arm_tenant)

    @extend_schema(responses={200: UsageEntrySerializer(many=True), **ERRORS_READ}, operation_id="usage_list")
    def get(self, request):
        return self.list(request)

    @extend_schema(
        request=UsageBatchSerializer,
        responses={200: UsageBatchResultSerializer, **ERRORS_WRITE, 413: USAGE_TOO_LARGE},
        operation_id="usage_ingest",
    )
    def post(self, request):
        serializer = UsageBatchInputSerializer(data={} if request.data is None else request.data)
        serializer.is_valid(raise_exception=True)
        result = ingest.usage_ingest(
            tenant=request.arm_tenant,
            entries=serializer.validated_data["entries"],
            source=UsageSource.API,
            actor=request.arm_actor,
        )
        return Response(result.as_dict())


@extend_schema_view(
    list=extend_schema(responses={200: PriceSerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: PriceSerializer, **ERRORS_READ}),
    create=extend_schema(responses={201: PriceSerializer, **ERRORS_WRITE}),
    partial_update=extend_schema(responses={200: PriceSerializer, **ERRORS_WRITE}),
    destroy=extend_schema(responses={204: None, **ERRORS_WRITE}),
)
class PriceViewSet(ListMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The tenant's price table: every member reads; compliance (or admin) writes."""

    queryset = Price.objects.all()
    serializer_class = PriceSerializer
    filterset_class = PriceFilterSet
    write_roles = LEDGER_WRITE_ROLES
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        price = prices.price_create(tenant=self.tenant, actor=self.actor, **serializer.validated_data)
        return Response(self.get_serializer(price).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        price = self.get_object()
        serializer = self.get_serializer(price, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        price = prices.price_update(price=price, actor=self.actor, **serializer.validated_data)
        return Response(self.get_serializer(price).data)

    def destroy(self, request, *args, **kwargs):
        prices.price_delete(price=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(responses={200: BudgetSerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: BudgetDetailSerializer, **ERRORS_READ}),
    create=extend_schema(responses={201: BudgetDetailSerializer, **ERRORS_WRITE}),
    partial_update=extend_schema(responses={200: BudgetDetailSerializer, **ERRORS_WRITE}),
    destroy=extend_schema(responses={204: None, **ERRORS_WRITE}),
)
class BudgetViewSet(ListMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Budgets per tenant, template or tag, daily or monthly, with alert thresholds. Every member reads
    (with the current period's spend); compliance (or admin) writes. ``{id}/alerts/`` lists the
    thresholds crossed, newest first."""

    queryset = Budget.objects.select_related("template")
    serializer_class = BudgetSerializer
    filterset_class = BudgetFilterSet
    write_roles = LEDGER_WRITE_ROLES
    action_roles = {"alerts": TenantViewSet.read_roles}
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_serializer_class(self):
        return BudgetSerializer if self.action in ("list", "alerts") else BudgetDetailSerializer

    def _with_status(self, budgets) -> dict:
        return {"status": selectors.budget_statuses(budgets, timezone.now())}

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        context = {**self.get_serializer_context(), **self._with_status(page)}
        return self.get_paginated_response(BudgetSerializer(page, many=True, context=context).data)

    def _detail(self, budget, http_status=status.HTTP_200_OK):
        context = {**self.get_serializer_context(), **self._with_status([budget])}
        return Response(BudgetDetailSerializer(budget, context=context).data, status=http_status)

    def retrieve(self, request, *args, **kwargs):
        return self._detail(self.get_object())

    def _template(self, data):
        template_id = data.pop("template_id", None)
        if template_id is None:
            return None
        template = scoped(AgentTemplate.objects.filter(pk=template_id), self.tenant).first()
        if template is None:
            raise exceptions.ValidationError({"template": "Template not found in this tenant."})
        return template

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        template = self._template(data)
        budget = budgets.budget_create(tenant=self.tenant, actor=self.actor, template=template, **data)
        return self._detail(budget, status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        budget = self.get_object()
        serializer = self.get_serializer(budget, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "template_id" in data:
            data["template"] = self._template(data)
        budget = budgets.budget_update(budget=budget, actor=self.actor, **data)
        return self._detail(budget)

    def destroy(self, request, *args, **kwargs):
        budgets.budget_delete(budget=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[
            OpenApiParameter("period_start", OpenApiTypes.DATE, description="Alerts of the period starting then."),
            OpenApiParameter("threshold", OpenApiTypes.INT, description="Alerts of this threshold (percent)."),
        ],
        responses={200: BudgetAlertSerializer(many=True), **ERRORS_READ},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def alerts(self, request, pk=None):
        # The budget is looked up unfiltered; the query filters are the alerts' (BudgetAlertFilterSet).
        budget = get_object_or_404(self.get_queryset(), pk=pk)
        filterset = BudgetAlertFilterSet(
            request.query_params, queryset=scoped(BudgetAlert.objects.filter(budget=budget), self.tenant)
        )
        if not filterset.is_valid():
            raise exceptions.ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs.order_by("-crossed_at"))
        return self.get_paginated_response(BudgetAlertSerializer(page, many=True).data)


class BudgetAlertViewSet(TenantViewSet):
    """A budget alert's acknowledgement: ``POST {id}/acknowledge/`` (compliance or admin) stamps who and
    when, records BUDGET_ALERT_ACKNOWLEDGED on its budget, and stops the alert shouting on the Cost page.
    An alert already acknowledged is a 409 ``already_acknowledged``. The alerts are listed per budget
    (``/budgets/{id}/alerts/``)."""

    queryset = BudgetAlert.objects.all()
    serializer_class = BudgetAlertSerializer
    write_roles = LEDGER_WRITE_ROLES
    http_method_names = ["post", "options"]

    @extend_schema(request=None, responses={200: BudgetAlertSerializer, **ERRORS_WRITE})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        alert = budgets.budget_alert_acknowledge(alert=self.get_object(), actor=self.actor)
        return Response(BudgetAlertSerializer(alert).data)
