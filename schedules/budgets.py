"""The ``budget_alerts`` schedule: budget thresholds (``ledger.budgets.budgets_evaluate``, which ingestion
also calls: here it catches a threshold crossed by an edit of the budget rather than by new usage) and
forecasts (``ledger.reports.budget_forecast`` and ``PeriodForecast.forecast_crosses``: the run-rate
forecast reaches the amount before the period ends while the spend has not yet). A forecast crossing is
recorded once per budget and period, BUDGET_FORECAST_CROSSING on the budget, which notifies
``budget.forecast_to_cross``; ``BudgetForecastNotice``'s unique constraint decides "once"."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.choices import EventType
from audit.services import record_change
from ledger.budgets import budgets_evaluate
from ledger.models import Budget, utc_day
from ledger.reports import budget_forecast, first_usage_day
from registry.models import AgentTemplate
from schedules.models import BudgetForecastNotice
from tenancy.context import Actor, actor_context
from tenancy.models import Tenant


def budget_forecast_check(*, budget: Budget, now: datetime, history_from, actor: Actor) -> bool:
    """Record BUDGET_FORECAST_CROSSING for ``budget`` when its forecast crosses its amount in the current
    period and that was not recorded yet this period; True when it was recorded now."""
    view = budget_forecast(budget, today=utc_day(now), history_from=history_from)
    forecast = view.forecast
    if not forecast.forecast_crosses:
        return False
    try:
        with transaction.atomic():
            BudgetForecastNotice.objects.create(
                budget=budget,
                period_start=forecast.period_start,
                forecast_usd=forecast.forecast,
                amount_usd=budget.amount_usd,
                created_at=now,
            )
            record_change(
                tenant=budget.tenant,
                event_type=EventType.BUDGET_FORECAST_CROSSING,
                target=budget,
                payload={
                    "budget": budget.name,
                    "period": budget.period,
                    "period_start": forecast.period_start,
                    "spend_usd": str(forecast.spent),
                    "forecast_usd": str(forecast.forecast),
                    "amount_usd": str(budget.amount_usd),
                    "runout_date": forecast.runout_on.isoformat() if forecast.runout_on else None,
                },
                actor=actor,
            )
    except IntegrityError:
        return False  # recorded already this period (by an earlier run, or a worker racing this one)
    return True


def budgets_check_all(*, now: datetime | None = None) -> tuple[int, int]:
    """Every tenant's budgets: thresholds crossed (recorded by ``budgets_evaluate``) and forecast
    crossings (above). Returns (thresholds crossed now, forecasts recorded now)."""
    now = now or timezone.now()
    today = utc_day(now)
    system = Actor.system()
    crossed = forecasts = 0
    for tenant in Tenant.objects.filter(pk__in=Budget.objects.values("tenant_id")).order_by("slug"):
        with actor_context(system, tenant):
            template_ids = list(AgentTemplate.objects.filter(tenant=tenant).values_list("pk", flat=True))
            crossed += len(budgets_evaluate(tenant=tenant, template_ids=template_ids, days=[today], actor=system))
            history_from = first_usage_day(tenant)
            for budget in Budget.objects.filter(tenant=tenant).select_related("tenant", "template"):
                forecasts += budget_forecast_check(budget=budget, now=now, history_from=history_from, actor=system)
    return crossed, forecasts
