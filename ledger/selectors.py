"""Reads of the ledger that are more than a filter. A budget's spend is computed here and only here
(ingestion's threshold checks, the API, the UI and the Incidents page all call it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from ledger.choices import BudgetScope, CostSource
from ledger.models import Budget, BudgetAlert, TemplateDayRollup, UsageEntry, utc_day
from registry.models import AgentTemplate

ZERO = Decimal(0)
MICRO = Decimal("0.000001")


def budget_rollups(budget: Budget):
    """The rollup rows a budget counts, as a queryset (the scope rule of ``budgets_period_spend`` for one
    budget, for reads by day such as the forecast): the tenant's, one template's, or those of templates
    carrying the tag now (matched as a JSON string in the template's ``tags`` list; tags are slugs, so
    the quoted form is exact on SQLite and PostgreSQL alike)."""
    rows = TemplateDayRollup.objects.filter(tenant_id=budget.tenant_id)
    if budget.scope == BudgetScope.TEMPLATE:
        rows = rows.filter(template_id=budget.template_id)
    elif budget.scope == BudgetScope.TAG:
        rows = rows.filter(template__tags__icontains=f'"{budget.tag}"')
    return rows


def budgets_period_spend(periods) -> dict[tuple, Decimal]:
    """Actual spend (reported or priced usage) of each ``(budget, period_start)`` in ``periods`` (budgets
    of one tenant), from the daily rollups: {(budget id, period_start): USD}.

    THE budget spend rule, in a fixed number of queries whatever the number of budgets: one grouped read
    of the template rollups per (template, day) over the span of the periods, and one read of the templates' tags
    when a tag budget is among them. A tenant budget counts every template, a template budget its
    template, a tag budget every template that carries the tag now."""
    periods = list(periods)
    if not periods:
        return {}
    bounds = {(b.pk, start): b.period_bounds(start) for b, start in periods}
    low = min(lo for lo, _ in bounds.values())
    high = max(hi for _, hi in bounds.values())
    tenant_id = periods[0][0].tenant_id
    rows = list(
        TemplateDayRollup.objects.filter(tenant_id=tenant_id, day__gte=low, day__lt=high)
        .values_list("template_id", "day")
        .annotate(total=Sum("cost_usd"))
        .order_by()
    )
    tags: dict = {}
    if any(b.scope == BudgetScope.TAG for b, _ in periods):
        tags = dict(AgentTemplate.objects.filter(tenant_id=tenant_id).values_list("pk", "tags"))

    def counts(budget: Budget, template_id) -> bool:
        if budget.scope == BudgetScope.TEMPLATE:
            return template_id == budget.template_id
        if budget.scope == BudgetScope.TAG:
            return budget.tag in (tags.get(template_id) or ())
        return True

    spend = {}
    for budget, start in periods:
        lo, hi = bounds[(budget.pk, start)]
        total = sum((t for template_id, day, t in rows if lo <= day < hi and counts(budget, template_id)), ZERO)
        spend[(budget.pk, start)] = Decimal(total).quantize(MICRO)
    return spend


def budget_period_spend(budget: Budget, period_start: date) -> Decimal:
    """Actual spend of one budget in the period starting at ``period_start`` (see
    ``budgets_period_spend``)."""
    return budgets_period_spend([(budget, period_start)])[(budget.pk, period_start)]


@dataclass(frozen=True)
class BudgetStatus:
    """A budget in its current period: spend so far, the share of the amount, thresholds crossed."""

    budget: Budget
    period_start: date
    period_end: date  # exclusive
    spend_usd: Decimal
    percent: Decimal
    crossed: tuple[int, ...]

    def as_dict(self) -> dict:
        return {
            "period_start": self.period_start,
            "period_end": self.period_end,
            "spend_usd": str(self.spend_usd),
            "percent": str(self.percent),
            "crossed_thresholds": list(self.crossed),
        }


def budget_statuses(budgets, now: datetime | None = None) -> dict:
    """{budget id: BudgetStatus} for the period containing ``now`` (UTC): three queries at most,
    whatever the number of budgets (lists and pages show many)."""
    budgets = list(budgets)
    if not budgets:
        return {}
    today = utc_day(now or timezone.now())
    starts = {b.pk: b.period_bounds(today)[0] for b in budgets}
    spend = budgets_period_spend([(b, starts[b.pk]) for b in budgets])
    crossed: dict = {}
    alerts = BudgetAlert.objects.filter(budget__in=budgets).values_list("budget_id", "period_start", "threshold")
    for budget_id, start, threshold in alerts.filter(period_start__in=set(starts.values())):
        if starts[budget_id] == start:
            crossed.setdefault(budget_id, []).append(threshold)
    statuses = {}
    for b in budgets:
        amount = spend[(b.pk, starts[b.pk])]
        percent = (amount * 100 / b.amount_usd).quantize(Decimal("0.1")) if b.amount_usd else ZERO
        statuses[b.pk] = BudgetStatus(
            b, starts[b.pk], b.period_bounds(today)[1], amount, percent, tuple(sorted(crossed.get(b.pk, ())))
        )
    return statuses


def budget_status(budget: Budget, now: datetime | None = None) -> BudgetStatus:
    """Where ``budget`` stands in the period containing ``now`` (UTC)."""
    return budget_statuses([budget], now)[budget.pk]


def recent_budget_alerts(tenant, limit: int = 50):
    """The tenant's newest budget alerts nobody has acknowledged yet, with their budgets (one query), for the
    Incidents page: an acknowledged alert stops shouting there (the Cost page still lists it, with who and
    when)."""
    return BudgetAlert.objects.filter(tenant=tenant, acknowledged_at__isnull=True).select_related(
        "budget", "budget__template"
    )[:limit]


MAX_UNPRICED_MODELS = 50


def unpriced_models(tenant, limit: int = MAX_UNPRICED_MODELS) -> list[dict]:
    """The models of the tenant's unpriced entries (no cost reported, no price in effect), most entries
    first: provider, model, entries, input and output tokens, and the first and last time seen. One
    grouped read of the partial index ``usage_unpriced``; at most ``limit`` models."""
    rows = (
        UsageEntry.objects.filter(tenant=tenant, cost_source=CostSource.UNPRICED)
        .values("provider", "model")
        .annotate(
            entries=Count("id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            first_at=Min("occurred_at"),
            last_at=Max("occurred_at"),
        )
        .order_by("-entries", "provider", "model")
    )
    return [{**row, "first_day": utc_day(row["first_at"])} for row in rows[:limit]]
