"""Ledger UI. The price table at ``/cost/prices/`` (reached from the Cost page): everyone reads, compliance
(or admin) adds and removes prices through the price services.

The Cost page (``/cost/``, every member): spend over time stacked by template, top agents and models,
budget burn-downs with their forecast, estimated vs actual, and the live instances against their
policy's cost limits. Every number comes from ``ledger.reports`` (daily rollups and the spend counters)
and ``ledger.forecast``; the charts are server-rendered SVG (``ledger.charts``). The number of queries
does not depend on the data: reports ask for the top groups only, the budget burn-downs are capped at
``MAX_BURNDOWNS`` and the instance list is paginated and sorted in SQL."""

from __future__ import annotations

import functools
from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from arm.db import custom_plans
from arm.errors import DomainError
from arm.ui import apply_service_errors, forbidden, non_empty, paginate
from ledger import budgets as budget_services
from ledger import charts, reports, selectors
from ledger import prices as price_services
from ledger.choices import LEDGER_WRITE_ROLES
from ledger.filtersets import PriceFilterSet
from ledger.forecast import month_bounds, projected_series
from ledger.forms import BudgetForm, PriceForm
from ledger.models import MONEY_SUM_DIGITS, Budget, BudgetAlert, InstanceSpanRollup, Price
from policies import services as policy_services
from policies.choices import SpendPeriod
from policies.models import ATTACHED_POLICY, InstanceSpend, attached_policy
from policies.views import limit_bar
from registry.choices import InstanceState
from registry.models import AgentInstance, AgentTemplate, Environment
from registry.views import FormModal
from tenancy.pages import can, tenant_page
from tenancy.scoping import scoped, scoped_get

MAX_BURNDOWNS = 6
STACKED_TEMPLATES = 6
TOP_ROWS = 10
PAGE_PARAMETERS = ("period", "since", "until", "environment", "template")
SORTS = {
    "month": ("Spend this month", ("-month_spend", "name")),
    "today": ("Spend today", ("-day_spend", "name")),
    "range": ("Actual in range", ("-range_actual", "name")),
    "name": ("Name", ("name",)),
}
MONEY = DecimalField(max_digits=MONEY_SUM_DIGITS, decimal_places=6)


def _query(request, today: date) -> tuple[reports.CostQuery, dict]:
    """The page's filters through the API's validation; a bad value is reported and the default used."""
    params = {k: request.GET.get(k, "") for k in PAGE_PARAMETERS if request.GET.get(k, "").strip()}
    try:
        return reports.parse_cost_query(request.arm_tenant, params, today=today), {}
    except reports.ReportQueryError as exc:
        errors = exc.errors
        good = {k: v for k, v in params.items() if k not in errors and not (exc.code == "invalid_range")}
        try:
            return reports.parse_cost_query(request.arm_tenant, good, today=today), errors
        except reports.ReportQueryError:
            return reports.parse_cost_query(request.arm_tenant, {}, today=today), errors


def _cost_url(query: reports.CostQuery, **changes) -> str:
    params = query.params(**changes)
    params.pop("group_by", None)
    if params.get("period") == "day":
        params.pop("period")
    return reverse("ui:cost") + ("?" + urlencode(params) if params else "")


def _spend_chart(tenant, query: reports.CostQuery) -> dict:
    """Spend over time stacked by template (the top few, the rest as "other templates")."""
    report = reports.cost_report(
        tenant,
        reports.CostQuery(
            "template", query.period, query.since, query.until, query.environment, query.template, STACKED_TEMPLATES
        ),
    )
    series = [
        charts.Series(g.label, g.series, charts.series_class(i), _cost_url(query, template=g.key))
        for i, g in enumerate(report.groups)
    ]
    if any(v > 0 for v in report.other_series):
        series.append(charts.Series("other templates", report.other_series, charts.OTHER_CLASS))
    svg = charts.responsive(
        lambda width: charts.stacked_bars(
            report.buckets,
            series,
            period=query.period,
            totals=report.totals,
            label=f"Spend per {query.period} by template, {query.since} to {query.until}",
            width=width,
        ),
        default=960,
    )
    table = [
        {"bucket": b, "values": [s.values[i] for s in series], "total": report.totals[i]}
        for i, b in enumerate(report.buckets)
    ]
    return {"report": report, "svg": svg, "legend": charts.legend_items(series), "series": series, "table": table}


def _bars(tenant, query: reports.CostQuery, group_by: str, label: str, testid: str) -> dict:
    report = reports.cost_report(
        tenant,
        reports.CostQuery(
            group_by, query.period, query.since, query.until, query.environment, query.template, TOP_ROWS
        ),
    )
    rows = []
    for g in report.groups:
        href = reverse("ui:instance_detail", args=[g.key]) if g.link and g.link[0] == "instance" else None
        rows.append(charts.BarRow(g.label, g.cost_usd, g.detail, href))
    svg = (
        charts.responsive(
            lambda width: charts.horizontal_bars(rows, label=label, testid=testid, width=width), default=560
        )
        if rows
        else ""
    )
    return {"report": report, "svg": svg, "groups": report.groups}


def _budgets(tenant, today: date) -> dict:
    budgets = list(
        Budget.objects.filter(tenant=tenant).select_related("template").order_by("name")[: MAX_BURNDOWNS + 1]
    )
    more = len(budgets) > MAX_BURNDOWNS
    history_from = reports.first_usage_day(tenant)
    views = []
    for budget in budgets[:MAX_BURNDOWNS]:
        view = reports.budget_forecast(budget, today=today, history_from=history_from)
        f = view.forecast
        svg = (
            charts.responsive(
                functools.partial(
                    charts.burndown,
                    period_start=f.period_start,
                    period_end=f.period_end,
                    amount=f.amount,
                    daily=view.daily,
                    today=today,
                    projection=projected_series(f),
                    runout_on=f.runout_on,
                    label=f"Budget {budget.name}: remaining over the period, forecast dashed",
                    testid="chart-burndown",
                ),
                default=560,
            )
            if (f.period_end - f.period_start).days > 1
            else ""
        )
        days = [f.period_start + timedelta(days=i) for i in range((today - f.period_start).days + 1)]
        running, table = Decimal(0), []
        for d in days:
            running += view.daily.get(d, Decimal(0))
            table.append({"day": d, "spent": view.daily.get(d, Decimal(0)), "remaining": f.amount - running})
        views.append({"budget": budget, "f": f, "svg": svg, "bar": limit_bar(f.spent, f.amount), "table": table})
    return {"items": views, "more": more}


def _instances(request, query: reports.CostQuery, today: date):
    """Live instances with today's and this month's spend (the larger of estimates and actuals, as the
    cost limits count it) and the actual spend in the range, sorted and paginated in SQL."""
    tenant = request.arm_tenant
    _, month = policy_services.spend_periods(timezone.now())

    def counter(period, start):
        rows = InstanceSpend.objects.filter(tenant=tenant, instance=OuterRef("pk"), period=period, period_start=start)
        return Coalesce(
            Subquery(rows.annotate(v=Greatest("amount_usd", "actual_usd")).values("v")[:1], output_field=MONEY),
            Value(Decimal(0)),
            output_field=MONEY,
        )

    actual = (
        InstanceSpanRollup.objects.filter(reports.blocks_q(query.since, query.until), instance=OuterRef("pk"))
        .order_by()
        .values("instance")
        .annotate(total=Sum("cost_usd"))
        .values("total")
    )
    qs = scoped(AgentInstance.objects, request.arm_tenant).exclude(state=InstanceState.RETIRED)
    if query.environment is not None:
        qs = qs.filter(environment=query.environment)
    if query.template is not None:
        qs = qs.filter(version__template=query.template)
    sort = request.GET.get("sort", "month")
    if sort not in SORTS:
        sort = "month"
    qs = (
        qs.select_related("version__template", ATTACHED_POLICY, "environment")
        .annotate(
            day_spend=counter(SpendPeriod.DAY, today),
            month_spend=counter(SpendPeriod.MONTH, month),
            range_actual=Coalesce(Subquery(actual, output_field=MONEY), Value(Decimal(0)), output_field=MONEY),
        )
        .order_by(*SORTS[sort][1])
    )
    page = paginate(request, qs, default_size=25)
    rows = []
    for instance in page:
        policy = attached_policy(instance)
        rows.append(
            {
                "instance": instance,
                "policy": policy,
                "range_actual": instance.range_actual,
                "day_bar": limit_bar(instance.day_spend, policy.cost_limit_daily_usd if policy else None),
                "month_bar": limit_bar(instance.month_spend, policy.cost_limit_monthly_usd if policy else None),
            }
        )
    return page, rows, sort


def _estimates(tenant, query: reports.CostQuery) -> dict:
    with custom_plans():
        rows = list(reports.estimates_vs_actuals(tenant, query, ordering="actual")[:TOP_ROWS])
    bars = [
        charts.BarRow(
            r["instance__name"] or "(unnamed)",
            r["actual"] or Decimal(0),
            r["instance__version__template__name"],
            reverse("ui:instance_detail", args=[r["instance_id"]]),
            second=r["estimated"] or Decimal(0),
        )
        for r in rows
    ]
    svg = (
        charts.responsive(
            lambda width: charts.horizontal_bars(
                bars,
                label="Actual cost (top bar) and estimated cost (lower bar) per instance",
                testid="chart-estimates",
                names=("actual", "estimated"),
                width=width,
                label_width=240,
            ),
            default=1100,
        )
        if bars
        else ""
    )
    return {"rows": rows, "svg": svg}


@tenant_page()
def cost(request):
    tenant = request.arm_tenant
    today = timezone.now().date()
    query, errors = _query(request, today)
    has_usage = reports.first_usage_day(tenant) is not None
    forecast, _ = reports.cost_forecast(tenant, today=today, environment=query.environment, template=query.template)
    page, rows, sort = _instances(request, query, today)
    context = {
        "query": query,
        "errors": errors,
        "has_usage": has_usage,
        "forecast": forecast,
        "today": today,
        "month": month_bounds(today)[0],
        "page": page,
        "rows": rows,
        "sort": sort,
        "sorts": [(k, v[0]) for k, v in SORTS.items()],
        "environments": list(
            scoped(Environment.objects, request.arm_tenant).order_by("name").only("id", "name", "tier")
        ),
        "templates": list(scoped(AgentTemplate.objects, request.arm_tenant).order_by("name").only("id", "name")),
        "periods": reports.PERIODS,
        "csv_url": reverse("cost-list") + "?" + urlencode({**query.params(), "format": "csv"}),
        "filtered": bool(query.environment or query.template),
        "clear_url": reverse("ui:cost"),
    }
    if has_usage:
        context.update(
            spend=_spend_chart(tenant, query),
            agents=_bars(tenant, query, "instance", "Top agents by actual cost", "chart-agents"),
            models=_bars(tenant, query, "model", "Top models by actual cost", "chart-models"),
            estimates=_estimates(tenant, query),
        )
    context["budgets"] = _budgets(tenant, today)
    context["budget_alerts"] = _budget_alerts(tenant)
    context["can_budget"] = can(request, *WRITE_ROLES)
    context["unpriced"] = _unpriced(request)
    # A refused filter is shown on the page, with the defaults used instead (a 200, as every UI page answers
    # a filter it cannot use: the page is still what was asked for).
    return render(request, "ledger/cost.html", context)


def _unpriced(request) -> dict:
    """The models whose usage is stored unpriced, each with a link to the price form prefilled for it
    (provider, model, and the first day of its unpriced usage, so the new price covers all of it), for
    those who may add prices."""
    rows = selectors.unpriced_models(request.arm_tenant)
    for row in rows:
        query = {"provider": row["provider"].lower(), "model": row["model"], "effective_from": row["first_day"]}
        row["add_url"] = reverse("ui:cost_prices") + "?" + urlencode(query) + "#price-form"
    return {"rows": rows, "can_price": can(request, *WRITE_ROLES), "limit": selectors.MAX_UNPRICED_MODELS}


# ---------------------------------------------------------------- prices

WRITE_ROLES = tuple(LEDGER_WRITE_ROLES)


@tenant_page(methods=("GET", "POST"))
def prices(request):
    """The price list (filter by provider or model text) and, for compliance, the form to add one:
    prefilled from ``?provider=&model=&effective_from=`` (the Cost page's "add a price" of an unpriced
    model)."""
    initial = {k: request.GET[k] for k in ("provider", "model", "effective_from") if request.GET.get(k)}
    form = PriceForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if not can(request, *WRITE_ROLES):
            return forbidden(request, "Changing prices needs the compliance or admin role.")
        if form.is_valid():
            try:
                price = price_services.price_create(
                    tenant=request.arm_tenant, actor=request.arm_actor, **form.cleaned_data
                )
            except (ValidationError, DomainError) as exc:
                apply_service_errors(form, exc)
            else:
                added = f"Price of {price.provider}/{price.model} from {price.effective_from} added."
                if repriced := price.repriced:
                    added += f" {repriced['entries']} unpriced entries priced at it ({repriced['cost_usd']} USD)."
                messages.success(request, added)
                return redirect("ui:cost_prices")
    params = non_empty(request.GET)
    filterset = PriceFilterSet(params, queryset=scoped(Price.objects, request.arm_tenant), request=request)
    rows = list(filterset.qs.order_by("provider", "model", "-effective_from")) if filterset.is_valid() else []
    return render(
        request,
        "ledger/prices.html",
        {"rows": rows, "form": form, "filters": request.GET, "can_edit": can(request, *WRITE_ROLES)},
    )


@tenant_page(WRITE_ROLES)
@require_POST
def price_delete(request, pk):
    price = scoped_get(Price.objects, request.arm_tenant, pk)
    try:
        price_services.price_delete(price=price, actor=request.arm_actor)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Price of {price.provider}/{price.model} from {price.effective_from} removed.")
    return redirect("ui:cost_prices")


# ---------------------------------------------------------------- budgets and their alerts

MAX_ALERTS_SHOWN = 10


def _budget_alerts(tenant) -> dict:
    """The alerts still shouting (unacknowledged, newest first) and the latest acknowledged ones, with who
    and when; each list capped (the API lists every alert per budget)."""
    alerts = BudgetAlert.objects.filter(tenant=tenant).select_related("budget", "budget__template")
    return {
        "open": list(alerts.filter(acknowledged_at__isnull=True).order_by("-crossed_at")[:MAX_ALERTS_SHOWN]),
        "open_count": alerts.filter(acknowledged_at__isnull=True).count(),
        "acknowledged": list(alerts.filter(acknowledged_at__isnull=False).order_by("-acknowledged_at")[:10]),
    }


def _with_template(tenant, data: dict) -> dict:
    """The form's template id as the tenant's template (another tenant's id reads as not found)."""
    if "template" in data:
        template_id = data["template"]
        template = None if template_id is None else AgentTemplate.objects.filter(tenant=tenant, pk=template_id).first()
        if template_id is not None and template is None:
            raise ValidationError({"template": "Template not found in this tenant."})
        data = {**data, "template": template}
    return data


def _budget_create(*, tenant, actor, **data):
    return budget_services.budget_create(tenant=tenant, actor=actor, **_with_template(tenant, data))


def _budget_update(*, budget, actor, **data):
    return budget_services.budget_update(budget=budget, actor=actor, **_with_template(budget.tenant, data))


def _budget_check(*, tenant, budget=None, **data):
    budget_services.budget_check(tenant=tenant, budget=budget, **_with_template(tenant, data))


def _budget_context(request, budget) -> dict:
    return {"templates": list(scoped(AgentTemplate.objects, request.arm_tenant).order_by("name").only("id", "name"))}


BUDGETS = FormModal(
    model=Budget,
    form=BudgetForm,
    noun="budget",
    template_name="ledger/_budget_form.html",
    create=_budget_create,
    update=_budget_update,
    check=_budget_check,
    done=("ui:cost",),
    created=lambda b: f"Budget {b.name} created.",
    saved=lambda b: f"Budget {b.name} saved.",
    context=_budget_context,
)


@tenant_page(WRITE_ROLES, methods=("GET", "POST"))
def budget_create(request):
    return BUDGETS.new(request)


@tenant_page(WRITE_ROLES, methods=("GET", "POST"))
def budget_edit(request, pk):
    return BUDGETS.edit(request, pk)


@tenant_page(WRITE_ROLES)
@require_POST
def budget_delete(request, pk):
    budget = scoped_get(Budget.objects, request.arm_tenant, pk)
    try:
        budget_services.budget_delete(budget=budget, actor=request.arm_actor)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Budget {budget.name} deleted, with its alerts.")
    return redirect("ui:cost")


@tenant_page(WRITE_ROLES)
@require_POST
def budget_alert_acknowledge(request, pk):
    alert = scoped_get(BudgetAlert.objects, request.arm_tenant, pk)
    try:
        alert = budget_services.budget_alert_acknowledge(alert=alert, actor=request.arm_actor)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Alert of budget {alert.budget.name} at {alert.threshold}% acknowledged.")
    return redirect("ui:cost")
