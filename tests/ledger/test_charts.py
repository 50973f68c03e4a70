"""The Cost page's SVG charts (ledger/charts.py): readable numbers, escaped labels, nothing the strict
Content-Security-Policy refuses (no style attribute, no script, no event handler)."""

import re
from datetime import date, timedelta
from decimal import Decimal

from ledger.charts import (
    BarRow,
    Series,
    burndown,
    compact_usd,
    horizontal_bars,
    label_indices,
    nice_ceiling,
    stacked_bars,
)
from ledger.forecast import month_forecast, projected_series

D = Decimal


def assert_csp_safe(svg: str) -> None:
    assert "style=" not in svg and "<script" not in svg.lower()
    assert not re.search(r"\son[a-z]+=", svg), "inline event handler"


def test_compact_usd_is_short_and_keeps_small_amounts():
    assert [compact_usd(D(v)) for v in ("0", "0.004", "0.56", "3.5", "34.25", "345", "1234", "56789", "2500000")] == [
        "$0",
        "$0.004",
        "$0.56",
        "$3.5",
        "$34.2",
        "$345",
        "$1.2k",
        "$57k",
        "$2.5M",
    ]


def test_nice_ceiling_picks_a_round_axis_top():
    assert [nice_ceiling(v) for v in (0, 0.7, 3, 7.2, 180, 1001)] == [1.0, 1.0, 5, 10, 200, 2000]


def test_value_labels_keep_the_peak_and_the_latest_and_never_crowd():
    chosen = label_indices(30, 4, {10, 29})
    assert {10, 29} <= chosen
    assert all(abs(a - b) >= 4 for a in chosen for b in chosen if a != b)
    assert label_indices(5, 1, {4}) == {0, 1, 2, 3, 4}


def test_stacked_bars_write_totals_axis_and_dates_and_link_segments():
    days = [date(2026, 11, 1) + timedelta(days=i) for i in range(3)]
    series = [
        Series("support <bot>", [D(10), D(0), D("20.5")], "chart-s0", "/cost/?template=a"),
        Series("other", [D(5), D(1), D(0)], "chart-other"),
    ]
    svg = stacked_bars(days, series, period="day")
    assert_csp_safe(svg)
    assert "$15" in svg and "$1" in svg and "$20.5" in svg  # totals above the bars
    assert "Nov 1" in svg and "Nov 3" in svg  # x axis
    assert "$25" in svg  # y axis top (nice ceiling of 20.5)
    assert "support &lt;bot&gt;" in svg and "<bot>" not in svg  # labels escaped
    assert svg.count('href="/cost/?template=a"') == 2  # one link per non-zero segment
    assert svg.count("<rect") == 4  # zero-height segments are not drawn


def test_horizontal_bars_label_each_row_with_its_value_and_truncate_long_names():
    rows = [
        BarRow("a" * 80, D(120), href="/instances/1/"),
        BarRow("short", D(30), second=D(45)),
    ]
    svg = horizontal_bars(rows, label="Top agents", testid="t")
    assert_csp_safe(svg)
    assert "$120" in svg and "$30" in svg and "$45" in svg
    assert "a" * 80 in svg  # full name in the hover title
    assert ("a" * 28 + "…<") in svg  # truncated on the bar
    assert 'href="/instances/1/"' in svg


def test_burndown_draws_actual_forecast_band_and_runout():
    today = date(2026, 11, 11)
    daily = {date(2026, 10, 28) + timedelta(days=i): D(10) for i in range(15)}
    forecast = month_forecast(daily, today=today)
    svg = burndown(
        period_start=date(2026, 11, 1),
        period_end=date(2026, 12, 1),
        amount=D(200),
        daily=daily,
        today=today,
        projection=projected_series(forecast),
        runout_on=date(2026, 11, 20),
        label="Budget",
        testid="b",
    )
    assert_csp_safe(svg)
    assert 'class="chart-actual"' in svg and 'class="chart-forecast"' in svg and 'class="chart-band"' in svg
    assert "runs out Nov 20" in svg
    assert "$90 left" in svg  # 200 - 110 spent by today
    assert "forecast -$100 left" in svg  # 300 forecast against 200
    assert "Nov 1" in svg and "Nov 30" in svg
