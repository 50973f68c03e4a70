"""The forecast arithmetic (ledger/forecast.py): run rate, month-end forecast with its band, budget
run-out dates. Pure functions over daily totals, so every number here is worked out by hand."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from ledger.forecast import month_bounds, month_forecast, period_forecast, projected_series, run_rate

D = Decimal


def days(start: date, values) -> dict:
    return {start + timedelta(days=i): D(v) for i, v in enumerate(values)}


def test_month_bounds_cross_the_year():
    assert month_bounds(date(2026, 12, 31)) == (date(2026, 12, 1), date(2027, 1, 1))
    assert month_bounds(date(2026, 2, 10)) == (date(2026, 2, 1), date(2026, 3, 1))


def test_run_rate_is_the_mean_of_the_last_complete_days_with_missing_days_as_zero():
    today = date(2026, 11, 20)
    # 14 complete days before today: Nov 6..19; Nov 6..12 spend 10, Nov 13..19 nothing; today ignored
    daily = days(date(2026, 11, 6), [10] * 7) | {today: D(1000)}
    rate = run_rate(daily, today)
    assert rate.days == 14 and rate.first_day == date(2026, 11, 6) and rate.last_day == date(2026, 11, 19)
    assert rate.mean == D("5.0000")
    # sample stdev of seven 10s and seven 0s: sqrt(14 * 25 / 13)
    assert rate.stdev == D("5.1887")


def test_run_rate_uses_only_days_since_history_began():
    today = date(2026, 11, 20)
    daily = days(date(2026, 11, 17), [4, 6, 8])
    assert run_rate(daily, today).mean == D("1.2857")  # 18 / 14
    rate = run_rate(daily, today, history_from=date(2026, 11, 17))
    assert (rate.days, rate.mean, rate.stdev) == (3, D("6.0000"), D("2.0000"))


def test_run_rate_without_history_is_zero():
    rate = run_rate({}, date(2026, 11, 1), history_from=date(2026, 11, 1))
    assert (rate.days, rate.mean, rate.stdev) == (0, D(0), D(0))


def test_month_forecast_adds_the_run_rate_for_the_rest_of_the_month():
    today = date(2026, 11, 21)  # November has 30 days: today + 9 days after
    daily = days(date(2026, 11, 1), [10] * 20) | {today: D(3)}
    f = month_forecast(daily, today=today)
    assert f.rate.mean == D("10.0000") and f.rate.stdev == D(0)
    assert f.spent == D(203) and f.days_remaining == 10
    # 200 before today + max(3, 10) for today + 9 × 10
    assert f.forecast == D("300.0000")
    assert f.low == f.high == D("300.0000")  # no variation, no band


def test_today_above_the_rate_counts_as_spent():
    today = date(2026, 11, 21)
    daily = days(date(2026, 11, 1), [10] * 20) | {today: D(25)}
    assert month_forecast(daily, today=today).forecast == D("315.0000")  # 200 + 25 + 9 × 10


def test_band_is_196_sigma_sqrt_remaining_days_and_never_below_spent():
    today = date(2026, 11, 27)  # 4 days remaining including today
    values = [5, 15] * 7  # Nov 13..26: mean 10, sample stdev sqrt(14*25/13)
    daily = days(date(2026, 11, 13), values)
    f = month_forecast(daily, today=today)
    assert f.rate.mean == D("10.0000") and f.rate.stdev == D("5.1887")
    assert f.spent == D(sum(values)) == D(140)  # Nov 13..26 are all in the month
    assert f.forecast == D("180.0000")  # 140 + max(0, 10) today + 3 × 10
    half = D("1.96") * D("5.1887") * 2  # sqrt(4) = 2
    assert f.high == (D(180) + half).quantize(D("0.0001"))
    assert f.low == (D(180) - half).quantize(D("0.0001"))
    # a very noisy history cannot forecast below what is already spent
    noisy = days(date(2026, 11, 13), [0, 200] * 7)
    g = month_forecast(noisy, today=today)
    assert g.low == g.spent


def test_budget_runout_date_from_the_run_rate():
    today = date(2026, 11, 11)
    daily = days(date(2026, 10, 28), [10] * 14)  # rate 10/day; Nov 1..10 spent 100
    f = period_forecast(daily, today=today, period_start=date(2026, 11, 1), period_end=date(2026, 12, 1), amount=D(200))
    # end of today: 110; 90 more at 10/day = 9 days → Nov 20
    assert f.runout_on == date(2026, 11, 20) and f.crossed_on is None
    assert f.forecast == D("300.0000") and f.forecast_pct == pytest.approx(150.0)
    # a budget the month will not reach has no run-out date
    g = period_forecast(
        daily, today=today, period_start=date(2026, 11, 1), period_end=date(2026, 12, 1), amount=D(1000)
    )
    assert g.runout_on is None
    # nor one so large that the run rate would take longer than a date can count (no OverflowError)
    h = period_forecast(
        days(date(2026, 10, 28), ["0.0001"] * 14),
        today=today,
        period_start=date(2026, 11, 1),
        period_end=date(2026, 12, 1),
        amount=D("999999999999.9999"),
    )
    assert h.runout_on is None and h.crossed_on is None


def test_budget_already_crossed_reports_the_day_it_crossed():
    today = date(2026, 11, 11)
    daily = days(date(2026, 11, 1), [30, 30, 30, 30, 0, 0, 0, 0, 0, 0, 5])
    f = period_forecast(daily, today=today, period_start=date(2026, 11, 1), period_end=date(2026, 12, 1), amount=D(100))
    assert f.crossed_on == f.runout_on == date(2026, 11, 4)
    assert f.spent_pct == pytest.approx(125.0)


def test_daily_budget_runs_out_today_when_the_rate_reaches_it():
    today = date(2026, 11, 11)
    daily = days(date(2026, 10, 28), [50] * 14) | {today: D(10)}
    f = period_forecast(daily, today=today, period_start=today, period_end=today + timedelta(days=1), amount=D(40))
    assert f.runout_on == today and f.crossed_on is None and f.forecast == D("50.0000")


def test_today_outside_the_period_is_refused():
    with pytest.raises(ValueError):
        period_forecast({}, today=date(2026, 12, 1), period_start=date(2026, 11, 1), period_end=date(2026, 12, 1))


def test_projected_series_runs_from_today_to_the_last_day():
    today = date(2026, 11, 28)
    daily = days(date(2026, 11, 14), [10] * 14)
    f = month_forecast(daily, today=today)
    series = projected_series(f)
    assert [row[0] for row in series] == [date(2026, 11, 28), date(2026, 11, 29), date(2026, 11, 30)]
    assert [row[1] for row in series] == [D(150), D(160), D(170)]  # 140 spent Nov 14..27, then 10 a day
    assert series[-1][1] == f.forecast
