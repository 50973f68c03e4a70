"""The Cost page's SVG charts (ledger/charts.py): readable numbers, escaped labels, nothing the strict
Content-Security-Policy refuses (no style attribute, no script, no event handler)."""

import re
from datetime import date, timedelta
from decimal import Decimal

from ledger.charts import (
    CHART_WIDTHS,
    BarRow,
    Series,
    burndown,
    horizontal_bars,
    label_indices,
    nice_ceiling,
    nice_ticks,
    responsive,
    stacked_bars,
)
from ledger.forecast import month_forecast, projected_series
from theme.templatetags.arm_ui import usd

D = Decimal


def assert_csp_safe(svg: str) -> None:
    assert "style=" not in svg and "<script" not in svg.lower()
    assert not re.search(r"\son[a-z]+=", svg), "inline event handler"


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
    assert "$90.00 left" in svg  # 200 - 110 spent by today
    assert "forecast -$100.00 left" in svg  # 300 forecast against 200
    assert "Nov 1" in svg and "Nov 30" in svg


def test_charts_write_money_as_the_tables_do():
    """One format (theme's format_usd, the usd filter): $13.22 on a bar is $13.22 in its table."""
    rows = [BarRow("a", D("13.22")), BarRow("b", D("0.004")), BarRow("c", D("56789.5"))]
    svg = horizontal_bars(rows, label="Top", testid="t")
    for value in ("13.22", "0.004", "56789.5"):
        assert f">{usd(D(value))}<" in svg
    assert ">$13.22<" in svg and ">$0.004<" in svg and ">$56,789.50<" in svg
    assert "$13.2<" not in svg and "k<" not in svg
    days = [date(2026, 11, 1), date(2026, 11, 2)]
    bars = stacked_bars(days, [Series("s", [D("13.22"), D("1.5")], "chart-s0")], period="day")
    assert ">$13.22<" in bars and ">$1.50<" in bars


def test_axes_use_round_ticks_including_zero():
    assert nice_ticks(0, 25, 4) == [0, 10, 20, 30]
    assert nice_ticks(-1180, 25, 5) == [-1500, -1000, -500, 0, 500]
    assert nice_ticks(0, 0)[0] == 0 and nice_ticks(0, 0)[-1] == 1  # an empty chart still has an axis
    assert nice_ticks(0, 0.6, 4) == [0, 0.2, 0.4, 0.6]
    for low, high in ((-5e6, 30), (-3, 2500), (0, 123456), (-0.5, 0.02)):
        t = nice_ticks(low, high, 5)
        assert t[0] <= low and t[-1] >= high and 0 in t and len(t) <= 6
        assert len({round(b - a, 9) for a, b in zip(t, t[1:], strict=False)}) == 1  # evenly spaced


def y_labels(svg: str) -> list[tuple[float, str]]:
    return [
        (float(y), text)
        for y, text in re.findall(r'<text x="[\d.]+" y="([\d.-]+)" text-anchor="end" class="chart-axis">([^<]+)<', svg)
    ]


def test_a_forecast_far_below_zero_keeps_the_axis_labels_apart():
    """Issue 26: a $25 budget whose forecast ends thousands below zero squeezed $0..$25 into a few pixels."""
    today = date(2026, 11, 11)
    daily = {date(2026, 11, 1) + timedelta(days=i): D(150) for i in range(11)}
    forecast = month_forecast(daily, today=today)
    svg = burndown(
        period_start=date(2026, 11, 1),
        period_end=date(2026, 12, 1),
        amount=D(25),
        daily=daily,
        today=today,
        projection=projected_series(forecast),
        runout_on=date(2026, 11, 1),
        label="Budget",
        testid="b",
    )
    labels = y_labels(svg)
    assert len(labels) >= 3 and any(text == "$0.00" for _, text in labels)
    gaps = [b[0] - a[0] for a, b in zip(labels, labels[1:], strict=False)]
    assert min(abs(g) for g in gaps) >= 22, labels  # two text heights apart at least
    assert all(-20 <= y <= 220 for y, _ in labels)


def test_responsive_renders_every_width_once_and_shows_one():
    rows = [BarRow("an agent with a rather long name indeed", D("12.5"))]
    html = responsive(lambda width: horizontal_bars(rows, label="Top", testid="t", width=width), default=600)
    live, templates = html.split("<template", 1)
    assert live.count("<svg") == 1 and 'viewBox="0 0 580 ' in live and 'data-chart-shown="580"' in live
    assert html.count("<template data-chart-width=") == len(CHART_WIDTHS) - 1
    for width in CHART_WIDTHS:
        assert html.count(f'<svg viewBox="0 0 {width} ') == 1
        if width != 580:
            assert f'<template data-chart-width="{width}"><svg viewBox="0 0 {width} ' in html
    assert_csp_safe(html)
