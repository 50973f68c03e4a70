"""Reads of the ledger that are more than a filter. A budget's spend is computed here and only here
(ingestion's threshold checks, the API, the UI and the Incidents page all call it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from ledger.choices import BudgetScope
from ledger.models import Budget, BudgetAlert, DailyRollup, utc_day

ZERO = Decimal(0)


def budget_rollups(budget: Budget):
    """The rollup rows a budget counts: the tenant's, one template's, or those of templates carrying the
    tag (matched as a JSON string in the template's ``tags`` list; tags are slugs, so the quoted form is
    exact on SQLite and PostgreSQL alike)."""
    rows = DailyRollup.objects.filter(tenant_id=budget.tenant_id)
    if budget.scope == BudgetScope.TEMPLATE:
        rows = rows.filter(template_id=budget.template_id)
    elif budget.scope == BudgetScope.TAG:
        rows = rows.filter(template__tags__icontains=f'"{budget.tag}"')
    return rows


def budget_period_spend(budget: Budget, period_start: date) -> Decimal:
    """Actual spend (reported or priced usage) of the budget's scope in the period starting at
    ``period_start``, from the daily rollups (one aggregate query)."""
    start, end = budget.period_bounds(period_start)
    total = budget_rollups(budget).filter(day__gte=start, day__lt=end).aggregate(total=Sum("cost_usd"))["total"]
    return (total or ZERO).quantize(Decimal("0.000001"))


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


def budget_status(budget: Budget, now: datetime | None = None) -> BudgetStatus:
    """Where ``budget`` stands in the period containing ``now`` (UTC)."""
    today = utc_day(now or timezone.now())
    start, end = budget.period_bounds(today)
    spend = budget_period_spend(budget, start)
    percent = (spend * 100 / budget.amount_usd).quantize(Decimal("0.1")) if budget.amount_usd else ZERO
    crossed = tuple(
        sorted(BudgetAlert.objects.filter(budget=budget, period_start=start).values_list("threshold", flat=True))
    )
    return BudgetStatus(budget, start, end, spend, percent, crossed)


def recent_budget_alerts(tenant, limit: int = 50):
    """The tenant's newest budget alerts with their budgets (one query), for the Incidents page."""
    return BudgetAlert.objects.filter(tenant=tenant).select_related("budget", "budget__template")[:limit]
