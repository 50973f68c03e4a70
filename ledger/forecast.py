"""Spend forecasts from the run rate: pure arithmetic over daily totals (no ORM, no clock), so the API,
the Cost page and the budget detail share one method and the tests walk every branch.

The method (also in docs/decisions.md, "Cost reports and forecasts"):

- **Run rate** = the mean daily spend over the last ``window`` (14) *complete* UTC days before today
  (a day with no usage counts as $0; fewer days when less history exists; today is partial, so never
  part of the rate).
- **Forecast for a period** (a calendar month, or a budget's day or month) = the spend of the period's
  complete days so far + for today ``max(spent today so far, run rate)`` + run rate × the days after
  today until the period ends.
- **Uncertainty**: σ = the sample standard deviation of the same daily spends; the band is
  forecast ± 1.96 · σ · √(days still to come, today included) — a 95 % interval when daily spends are
  independent and roughly normal. The low end never goes below what is already spent.
- **Run-out date** of a budget: the day on which the spend so far plus the run rate per day reaches the
  amount (today when it already has), or none when that falls after the period ends. A budget already
  crossed reports the day it was crossed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

RUN_RATE_WINDOW_DAYS = 14
Z_95 = Decimal("1.96")
CENT = Decimal("0.0001")
ZERO = Decimal(0)


def _q(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def month_bounds(day: date) -> tuple[date, date]:
    """(first day of ``day``'s month, first day of the next month)."""
    start = day.replace(day=1)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


@dataclass(frozen=True)
class RunRate:
    """Mean and sample standard deviation of the daily spend over ``days`` complete days."""

    mean: Decimal
    stdev: Decimal
    days: int
    first_day: date | None
    last_day: date | None


def run_rate(
    daily: Mapping[date, Decimal], today: date, *, window: int = RUN_RATE_WINDOW_DAYS, history_from: date | None = None
) -> RunRate:
    """The run rate over the last ``window`` complete days before ``today`` (missing days count as 0).

    ``history_from`` is the first day usage could exist (e.g. the tenant's first rollup): days before it
    are not counted as zero-spend days, so a week-old tenant's rate is its weekly mean, not a 14-day
    mean diluted by days it did not exist."""
    last = today - timedelta(days=1)
    first = today - timedelta(days=window)
    if history_from is not None and history_from > first:
        first = history_from
    if first > last:
        return RunRate(ZERO, ZERO, 0, None, None)
    n = (last - first).days + 1
    values = [Decimal(daily.get(first + timedelta(days=i), ZERO)) for i in range(n)]
    mean = sum(values, ZERO) / n
    if n > 1:
        variance = sum(((v - mean) ** 2 for v in values), ZERO) / (n - 1)
        stdev = variance.sqrt()
    else:
        stdev = ZERO
    return RunRate(_q(mean), _q(stdev), n, first, last)


@dataclass(frozen=True)
class PeriodForecast:
    """Where a period's spend is heading (all amounts USD)."""

    period_start: date
    period_end: date  # exclusive
    spent: Decimal  # in the period so far, today included
    spent_today: Decimal
    rate: RunRate
    days_remaining: int  # days still to come, today included
    forecast: Decimal
    low: Decimal
    high: Decimal
    amount: Decimal | None = None  # the budget, when forecasting one
    crossed_on: date | None = None  # the day cumulative actual spend reached ``amount``
    runout_on: date | None = None  # the day the budget is reached (actual or forecast), None: not this period

    @property
    def forecast_pct(self) -> float | None:
        if self.amount is None or self.amount <= 0:
            return None
        return float(self.forecast / self.amount * 100)

    @property
    def forecast_crosses(self) -> bool:
        """The budget is not reached yet, and the forecast says it will be before the period ends (the
        ``budget.forecast_to_cross`` notification, once per period: ``schedules.budgets``)."""
        return self.amount is not None and self.amount > 0 and self.spent < self.amount <= self.forecast

    @property
    def spent_pct(self) -> float | None:
        if self.amount is None or self.amount <= 0:
            return None
        return float(self.spent / self.amount * 100)

    def as_dict(self) -> dict:
        return {
            "period_start": self.period_start.isoformat(),
            "period_end": (self.period_end - timedelta(days=1)).isoformat(),
            "spent_usd": str(_q(self.spent)),
            "run_rate_usd_per_day": str(self.rate.mean),
            "run_rate_stdev_usd": str(self.rate.stdev),
            "run_rate_days": self.rate.days,
            "days_remaining": self.days_remaining,
            "forecast_usd": str(self.forecast),
            "forecast_low_usd": str(self.low),
            "forecast_high_usd": str(self.high),
            "runout_date": self.runout_on.isoformat() if self.runout_on else None,
            "crossed_date": self.crossed_on.isoformat() if self.crossed_on else None,
        }


def period_forecast(
    daily: Mapping[date, Decimal],
    *,
    today: date,
    period_start: date,
    period_end: date,
    amount: Decimal | None = None,
    window: int = RUN_RATE_WINDOW_DAYS,
    history_from: date | None = None,
) -> PeriodForecast:
    """Forecast the spend of ``[period_start, period_end)`` seen on ``today`` (inside the period) from
    ``daily`` totals, and when ``amount`` is given, the day it is reached. See the module docstring."""
    if not period_start <= today < period_end:
        raise ValueError("today must fall inside the period")
    rate = run_rate(daily, today, window=window, history_from=history_from)
    spent_before = ZERO
    crossed_on = None
    running = ZERO
    day = period_start
    while day <= today:
        running += Decimal(daily.get(day, ZERO))
        if amount is not None and crossed_on is None and running >= amount:
            crossed_on = day
        if day < today:
            spent_before = running
        day += timedelta(days=1)
    spent_today = Decimal(daily.get(today, ZERO))
    spent = spent_before + spent_today
    days_after = (period_end - today).days - 1
    days_remaining = days_after + 1
    forecast = spent_before + max(spent_today, rate.mean) + rate.mean * days_after
    half_band = Z_95 * rate.stdev * Decimal(math.sqrt(days_remaining))
    low = max(spent, forecast - half_band)
    high = forecast + half_band

    runout_on = crossed_on
    if amount is not None and crossed_on is None:
        # today ends at max(spent today, rate); each later day adds the rate
        end_of_today = spent_before + max(spent_today, rate.mean)
        if end_of_today >= amount:
            runout_on = today
        elif rate.mean > 0:
            # Compared as a number of days first: a huge budget over a tiny rate is millions of years
            # away, past what a date can hold.
            days = ((amount - end_of_today) / rate.mean).to_integral_value(rounding="ROUND_CEILING")
            runout_on = today + timedelta(days=int(days)) if days < (period_end - today).days else None
    return PeriodForecast(
        period_start=period_start,
        period_end=period_end,
        spent=spent,
        spent_today=spent_today,
        rate=rate,
        days_remaining=days_remaining,
        forecast=_q(forecast),
        low=_q(low),
        high=_q(high),
        amount=amount,
        crossed_on=crossed_on,
        runout_on=runout_on,
    )


def month_forecast(daily: Mapping[date, Decimal], *, today: date, **kwargs) -> PeriodForecast:
    """The calendar month of ``today``: month to date and where it ends."""
    start, end = month_bounds(today)
    return period_forecast(daily, today=today, period_start=start, period_end=end, **kwargs)


def projected_series(forecast: PeriodForecast) -> list[tuple[date, Decimal, Decimal, Decimal]]:
    """Cumulative projected spend for each day from today to the period's last day:
    (day, expected, low, high) at the end of that day. The band widens with √(days ahead)."""
    rows = []
    base = forecast.spent - forecast.spent_today
    expected = base + max(forecast.spent_today, forecast.rate.mean)
    for i in range(forecast.days_remaining):
        day = forecast.period_start + timedelta(
            days=(forecast.period_end - forecast.period_start).days - forecast.days_remaining + i
        )
        if i:
            expected += forecast.rate.mean
        half = Z_95 * forecast.rate.stdev * Decimal(math.sqrt(i + 1))
        rows.append((day, _q(expected), _q(max(forecast.spent, expected - half)), _q(expected + half)))
    return rows
