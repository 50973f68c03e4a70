"""The costs API (read-only, every member): ``GET /api/v1/costs/`` (the report, JSON or ``?format=csv``),
``costs/forecast/`` (this month's forecast) and ``costs/estimates/`` (estimated vs actual per instance).
Parameters are validated by ``ledger.reports.parse_cost_query`` (the Cost page uses the same), and every
number comes from ``ledger.reports`` / ``ledger.forecast``."""

from __future__ import annotations

from datetime import date

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from arm.api import StandardPagination
from arm.db import custom_plans
from arm.schema import ERRORS_READ, ErrorSerializer
from ledger import reports
from ledger.csvexport import csv_lines
from ledger.forecast import RUN_RATE_WINDOW_DAYS
from ledger.models import TemplateDayRollup
from tenancy.viewsets import TenantViewSet

FORECAST_METHOD = (
    f"run rate = mean daily spend over the last {RUN_RATE_WINDOW_DAYS} complete UTC days (days without usage "
    "count as 0; fewer days when the tenant's usage history is shorter); forecast = spend of the month's "
    "complete days + max(spent today, run rate) + run rate x the days after today; band = forecast +/- "
    "1.96 x sample standard deviation of those daily spends x sqrt(days left, today included), never below "
    "what is already spent"
)


class IgnoreFormatNegotiation(DefaultContentNegotiation):
    """``?format=`` is the report's own parameter (json or csv), not DRF's renderer override."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type


class CostGroupSerializer(serializers.Serializer):
    key = serializers.CharField(
        help_text="Id of the template/version/instance/environment, provider, "
        "provider/model, tag or owner ('' for none)."
    )
    label = serializers.CharField()
    detail = serializers.CharField(
        help_text="A second line: the template@version and environment of an instance, the provider of a model."
    )
    cost_usd = serializers.CharField(help_text="Actual spend in the range (decimal string).")
    entries = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    allowed_calls = serializers.IntegerField(
        allow_null=True, help_text="ALLOW policy decisions in the range (null for provider and model)."
    )
    cost_per_allowed_call_usd = serializers.CharField(
        allow_null=True, help_text="cost_usd / allowed_calls (null without allowed calls)."
    )
    series = serializers.ListField(child=serializers.CharField(), help_text="Spend per bucket, as `buckets`.")


class CostReportSerializer(serializers.Serializer):
    group_by = serializers.CharField()
    period = serializers.CharField()
    since = serializers.DateField()
    until = serializers.DateField()
    currency = serializers.CharField()
    buckets = serializers.ListField(
        child=serializers.DateField(), help_text="Start of each day, week (Monday) or month."
    )
    total_usd = serializers.CharField()
    total_entries = serializers.IntegerField()
    totals = serializers.ListField(child=serializers.CharField(), help_text="Spend per bucket, every group included.")
    group_count = serializers.IntegerField(help_text="Groups with spend in the range (groups lists the top `limit`).")
    other_usd = serializers.CharField(help_text="Spend of the groups beyond `limit` together.")
    groups = CostGroupSerializer(many=True)


class ForecastSerializer(serializers.Serializer):
    period_start = serializers.DateField()
    period_end = serializers.DateField(help_text="The period's last day (inclusive).")
    spent_usd = serializers.CharField()
    run_rate_usd_per_day = serializers.CharField()
    run_rate_stdev_usd = serializers.CharField()
    run_rate_days = serializers.IntegerField()
    days_remaining = serializers.IntegerField(help_text="Days still to come, today included.")
    forecast_usd = serializers.CharField()
    forecast_low_usd = serializers.CharField()
    forecast_high_usd = serializers.CharField()
    runout_date = serializers.DateField(allow_null=True, help_text="Budgets: the day the amount is reached.")
    crossed_date = serializers.DateField(allow_null=True, help_text="Budgets: the day actual spend reached it.")


class CostForecastSerializer(ForecastSerializer):
    method = serializers.CharField()


class EstimateRowSerializer(serializers.Serializer):
    instance = serializers.UUIDField()
    instance_name = serializers.CharField()
    template_name = serializers.CharField()
    estimated_usd = serializers.CharField(help_text="Sum of the estimates of ALLOWed calls (policy evaluation).")
    actual_usd = serializers.CharField(help_text="Cost reported to the ledger.")
    difference_usd = serializers.CharField(help_text="actual_usd - estimated_usd.")


def report_body(report: reports.CostReport) -> dict:
    q = report.query
    return {
        "group_by": q.group_by,
        "period": q.period,
        "since": q.since,
        "until": q.until,
        "currency": "USD",
        "buckets": report.buckets,
        "total_usd": reports.money_text(report.total_usd),
        "total_entries": report.total_entries,
        "totals": [reports.money_text(v) for v in report.totals],
        "group_count": report.group_count,
        "other_usd": reports.money_text(report.other_usd),
        "groups": [
            {
                "key": g.key,
                "label": g.label,
                "detail": g.detail,
                "cost_usd": reports.money_text(g.cost_usd),
                "entries": g.entries,
                "input_tokens": g.input_tokens,
                "output_tokens": g.output_tokens,
                "allowed_calls": g.allowed_calls,
                "cost_per_allowed_call_usd": (
                    None if g.cost_per_allowed_call_usd is None else reports.money_text(g.cost_per_allowed_call_usd)
                ),
                "series": [reports.money_text(v) for v in g.series],
            }
            for g in report.groups
        ],
    }


def csv_response(tenant, query: reports.CostQuery) -> StreamingHttpResponse:
    """The report's rows as CSV, streamed (one row per bucket and group with spend)."""
    lines = csv_lines(reports.CSV_COLUMNS, reports.cost_rows(tenant, query))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    name = f"arm-costs-{query.group_by}-{query.period}-{query.since}-{query.until}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _today() -> date:
    return timezone.now().date()


_DATE = f"A UTC date, YYYY-MM-DD, from {reports.FIRST_REPORT_DAY} to {reports.LAST_REPORT_DAY} (else 400)."
FILTERS = [
    OpenApiParameter("environment", OpenApiTypes.UUID, description="Only this environment's instances."),
    OpenApiParameter("template", OpenApiTypes.UUID, description="Only this template's instances."),
]
RANGE = [
    OpenApiParameter("since", OpenApiTypes.DATE, description=_DATE + " Default: 29 days before until."),
    OpenApiParameter("until", OpenApiTypes.DATE, description=_DATE + " Inclusive; default today. At most 366 days."),
]
REPORT_ERRORS = {
    **ERRORS_READ,
    400: OpenApiResponse(
        ErrorSerializer,
        description="A parameter is unknown (unknown_parameter), invalid (invalid_parameter, also an id of "
        "another tenant) or the range is (invalid_range); `errors` names the parameter.",
    ),
}


class CostSchema(AutoSchema):
    """The report is the viewset's ``list`` route but answers one object, not a list of them."""

    def _is_list_view(self, serializer=None) -> bool:
        if getattr(self.view, "action", None) == "list":
            return False
        return super()._is_list_view(serializer)


class CostViewSet(TenantViewSet):
    """Costs, read from the daily rollups. Every member of the tenant may read them."""

    schema = CostSchema()

    queryset = TemplateDayRollup.objects.none()
    filter_backends: list = []
    pagination_class = None
    content_negotiation_class = IgnoreFormatNegotiation

    def _query(self, request, *, extra=()) -> reports.CostQuery:
        return reports.parse_cost_query(self.tenant, request.query_params, today=_today(), extra=extra)

    @extend_schema(
        operation_id="costs_report",
        parameters=[
            OpenApiParameter("group_by", str, enum=[*reports.GROUP_BYS], description="Default template."),
            OpenApiParameter("period", str, enum=[*reports.PERIODS], description="Buckets; default day."),
            *RANGE,
            *FILTERS,
            OpenApiParameter(
                "limit",
                OpenApiTypes.INT,
                description=f"Groups listed, most expensive first (1-{reports.MAX_LIMIT},"
                f" default {reports.DEFAULT_LIMIT}); the totals count every group.",
            ),
            OpenApiParameter(
                "format", str, enum=["json", "csv"], description="csv: every (bucket, group) row, streamed."
            ),
        ],
        responses={
            (200, "application/json"): CostReportSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
            **REPORT_ERRORS,
        },
    )
    def list(self, request):
        """Spend grouped by template, version, instance, environment, provider, model, tag or owner, per
        day, week or month, with cost per allowed tool call. Read from the daily rollups, never from the
        entries. Tag and owner come from the template's lists (a template with two tags counts in both)."""
        fmt = request.query_params.get("format") or "json"
        query = self._query(request, extra=("format",))
        if fmt not in ("json", "csv"):
            raise reports.ReportQueryError(
                "format is json or csv.", code="invalid_parameter", errors={"format": ["One of json, csv."]}
            )
        if fmt == "csv":
            return csv_response(self.tenant, query)
        return Response(report_body(reports.cost_report(self.tenant, query)))

    @extend_schema(
        operation_id="costs_forecast",
        parameters=FILTERS,
        responses={200: CostForecastSerializer, **REPORT_ERRORS},
    )
    @action(detail=False, methods=["get"])
    def forecast(self, request):
        """This calendar month (UTC): spend so far and the month-end forecast from the run rate, with its
        95 % band (``method`` says how). A budget's own forecast and run-out date are in its detail."""
        query = reports.parse_cost_query(
            self.tenant, _only(request.query_params, ("environment", "template")), today=_today()
        )
        forecast, _ = reports.cost_forecast(
            self.tenant, today=_today(), environment=query.environment, template=query.template
        )
        return Response({**forecast.as_dict(), "method": FORECAST_METHOD})

    @extend_schema(
        operation_id="costs_estimates",
        parameters=[
            *RANGE,
            *FILTERS,
            OpenApiParameter(
                "ordering",
                str,
                enum=[*reports.ESTIMATE_ORDERINGS],
                description="Default actual (largest first); name sorts by instance name.",
            ),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("page_size", OpenApiTypes.INT),
        ],
        responses={200: EstimateRowSerializer(many=True), **REPORT_ERRORS},
    )
    @action(detail=False, methods=["get"], pagination_class=StandardPagination)
    def estimates(self, request):
        """Per instance over the range: the estimates sent with its ALLOWed policy evaluations against
        the actual cost reported to the ledger (both from the day spend counters the cost limits read)."""
        query = self._query(request, extra=("ordering", "page", "page_size"))
        _reject_group_params(request.query_params)
        ordering = request.query_params.get("ordering") or "actual"
        if ordering not in reports.ESTIMATE_ORDERINGS:
            raise reports.ReportQueryError(
                "Unknown ordering.",
                code="invalid_parameter",
                errors={"ordering": [f"One of {', '.join(reports.ESTIMATE_ORDERINGS)}."]},
            )
        rows = reports.estimates_vs_actuals(self.tenant, query, ordering=ordering)
        with custom_plans():
            page = self.paginate_queryset(rows)
        return self.get_paginated_response(
            [
                {
                    "instance": r["instance_id"],
                    "instance_name": r["instance__name"],
                    "template_name": r["instance__version__template__name"],
                    "estimated_usd": reports.money_text(r["estimated"]),
                    "actual_usd": reports.money_text(r["actual"]),
                    "difference_usd": reports.money_text(r["difference"]),
                }
                for r in page
            ]
        )


def _only(params, allowed: tuple[str, ...]) -> dict:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise reports.ReportQueryError(
            f"Unknown query parameter(s): {', '.join(unknown)}.",
            code="unknown_parameter",
            errors={name: ["Unknown parameter."] for name in unknown},
        )
    return params


def _reject_group_params(params) -> None:
    """The estimates are per instance: grouping, buckets and limit do not apply."""
    misplaced = sorted({"group_by", "period", "limit"} & set(params))
    if misplaced:
        raise reports.ReportQueryError(
            f"Not a parameter of the estimates: {', '.join(misplaced)}.",
            code="unknown_parameter",
            errors={name: ["Unknown parameter."] for name in misplaced},
        )


router = SimpleRouter(trailing_slash=True)
router.register("costs", CostViewSet, basename="cost")
urlpatterns = [*router.urls]
