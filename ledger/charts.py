"""Server-rendered SVG charts for the Cost page: no JavaScript library, no CDN, nothing inline the
Content-Security-Policy would refuse (no ``style=`` attribute, no script). Colours come from CSS classes
of the theme (``chart-s0`` … in ``theme/static_src/src/styles.css``), text sizes from SVG presentation
attributes. Every chart is readable without hovering: axes with labels, the values written next to
the bars or lines, a legend (HTML, next to the chart), and the numbers as a table under it (the
template). Bars are links where they have somewhere to go (drill down).

Money is written by ``theme``'s ``format_usd``, the function behind the tables' ``usd`` filter, so a
chart and its table say the same figure the same way ($13.22 in both). Axes use round ticks
(``nice_ticks``) over the whole range shown, so labels never crowd, whatever a forecast does.

Text is ``FONT`` px and is never drawn smaller: ``responsive`` renders a chart at each of
``CHART_WIDTHS`` and the page shows the widest rendering that fits the chart's box (``theme/static/arm/
ui.js``), scaled up by less than the step to the next width; below the narrowest, the box scrolls.

Pure functions of plain data (dates, Decimals, labels, URLs) returning markup, so they are tested
without a database.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from html import escape

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from theme.templatetags.arm_ui import format_usd

SERIES_CLASSES = tuple(f"chart-s{i}" for i in range(8))
OTHER_CLASS = "chart-other"
FONT = 11
CHAR_WIDTH = 7.0  # the widest average glyph at FONT px (bold digits), to keep labels from colliding
# The widths a chart is rendered at (``responsive``): each at most 1.4× the one before.
CHART_WIDTHS = (300, 420, 580, 800, 1100)


def series_class(index: int) -> str:
    return SERIES_CLASSES[index % len(SERIES_CLASSES)]


def usd(value: Decimal | float) -> str:
    """A chart's money label: the tables' format (``format_usd``)."""
    return format_usd(value if isinstance(value, Decimal) else Decimal(str(round(value, 6))))


def text_width(text: str) -> float:
    return len(text) * CHAR_WIDTH


def nice_step(raw: float) -> float:
    """The smallest 1/2/2.5/5 × 10^n at or above ``raw``."""
    if raw <= 0:
        return 1.0
    exponent = math.floor(math.log10(raw))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= raw * 0.9999:
            return candidate
    return 10 ** (exponent + 1)  # pragma: no cover - the loop always returns


def nice_ceiling(value: float) -> float:
    """The smallest 1/2/2.5/5 × 10^n at or above ``value`` (the top of a y axis from zero)."""
    return 1.0 if value <= 0 else nice_step(value)


def nice_ticks(low: float, high: float, max_ticks: int = 5) -> list[float]:
    """Round, evenly spaced ticks covering ``low``..``high`` (zero among them when the range crosses it),
    at most ``max_ticks`` + 1 of them: the axis runs from the first to the last."""
    low, high = min(low, 0.0, high), max(high, 0.0, low)
    if high - low <= 0:
        high = low + 1.0
    step = nice_step((high - low) / max(max_ticks, 1))
    while True:
        first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
        if last - first <= max_ticks:
            return [round(i * step, 10) for i in range(first, last + 1)]
        step = nice_step(step * 1.01)  # the next round step up


def ticks(top: float, count: int = 4) -> list[float]:
    return [top * i / count for i in range(count + 1)]


def bucket_label(day: date, period: str) -> str:
    if period == "month":
        return day.strftime("%b %Y")
    return f"{day.strftime('%b')} {day.day}"


def _every(n: int, band: float, label_width: float) -> int:
    """Label every k-th of ``n`` slots so labels ``label_width`` wide do not collide."""
    if band <= 0:
        return max(1, n)
    return max(1, math.ceil((label_width + 6) / band))


def label_indices(n: int, every: int, must: set[int]) -> set[int]:
    """Which of ``n`` slots get a value label: ``must`` (the peak, the latest) and every ``every``-th
    slot that is at least ``every`` away from those."""
    chosen = {i for i in must if 0 <= i < n}
    for i in range(0, n, every):
        if all(abs(i - m) >= every for m in chosen):
            chosen.add(i)
    return chosen


@dataclass
class Series:
    label: str
    values: Sequence[Decimal]
    css: str
    href: str | None = None  # drill-down for the whole series (a segment links to it)


def _svg_open(width: int, height: int, label: str, testid: str) -> str:
    return format_html(
        '<svg viewBox="0 0 {} {}" class="chart h-auto w-full" role="img" aria-label="{}" data-testid="{}" '
        'font-size="{}" xmlns="http://www.w3.org/2000/svg">',
        width,
        height,
        label,
        testid,
        FONT,
    )


# The helpers below write markup with f-strings (a chart has thousands of elements): numbers and the
# module's own class names go in as they are, every text from data (labels, titles, links) is escaped.
def _text(x: float, y: float, text: str, css: str = "chart-label", anchor: str = "start") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{css}">{escape(str(text))}</text>'


def _link(href: str | None, inner: str, title: str) -> str:
    titled = f"<title>{escape(title)}</title>{inner}"
    if not href:
        return f"<g>{titled}</g>"
    return f'<a href="{escape(href)}" class="chart-link">{titled}</a>'


def _y_axis(tick_values: Sequence[float], y, left: float, right: float) -> list[str]:
    """Grid lines and their labels (the zero line drawn as the baseline)."""
    parts = []
    for t in tick_values:
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="{}"/>',
                left,
                f"{right:.1f}",
                f"{y(t):.1f}",
                f"{y(t):.1f}",
                "chart-baseline" if t == 0 else "chart-grid",
            )
        )
        parts.append(_text(left - 6, y(t) + 4, usd(t), "chart-axis", "end"))
    return parts


def _left_margin(tick_values: Sequence[float]) -> float:
    return max(44.0, max(text_width(usd(t)) for t in tick_values) + 12)


def _max_ticks(plot_h: float) -> int:
    """As many ticks as fit with a label's height and some air between them."""
    return max(2, min(6, int(plot_h // (FONT * 3))))


def responsive(render: Callable[..., str], *, default: int = 960) -> SafeString:
    """The chart rendered once at each width of ``CHART_WIDTHS`` (``render(width=w)``): the rendering
    closest to ``default`` is in the page, the others wait in ``<template>`` elements, and ui.js swaps in
    the widest that fits the box whenever its width changes (without JavaScript, the default is shown,
    scaled)."""
    shown = max([w for w in CHART_WIDTHS if w <= default] or [CHART_WIDTHS[0]])
    parts = [format_html('<div class="chart-box" data-chart-variants data-chart-shown="{}">', shown)]
    parts.append(render(width=shown))
    for width in CHART_WIDTHS:
        if width != shown:
            parts.append(format_html('<template data-chart-width="{}">{}</template>', width, render(width=width)))
    parts.append("</div>")
    return mark_safe("".join(parts))  # noqa: S308 - every piece is escaped by format_html or built here


def stacked_bars(
    buckets: Sequence[date],
    series: Sequence[Series],
    *,
    period: str,
    totals: Sequence[Decimal] | None = None,
    bucket_href=None,
    label: str = "Spend over time",
    testid: str = "chart-spend",
    width: int = 960,
    height: int = 300,
) -> SafeString:
    """Bars per bucket, stacked by series, the total written above the bars (every k-th when crowded,
    always the highest and the latest), a y axis in dollars and dates under the bars."""
    n = len(buckets)
    if totals is None:
        totals = [sum((s.values[i] for s in series), Decimal(0)) for i in range(n)]
    top, bottom, right = 22, 34, 12
    plot_h = height - top - bottom
    tick_values = nice_ticks(0.0, float(max(totals, default=0)), _max_ticks(plot_h))
    top_value = tick_values[-1]
    left = _left_margin(tick_values)
    plot_w = width - left - right
    band = plot_w / max(n, 1)
    bar_w = max(1.0, band * 0.72)
    y = lambda v: top + plot_h - float(v) / top_value * plot_h  # noqa: E731
    parts = [_svg_open(width, height, label, testid)]
    parts += _y_axis(tick_values, y, left, width - right)
    peak = max(range(n), key=lambda i: totals[i]) if n else -1
    widest = max((text_width(usd(t)) for t in totals), default=0)
    labelled = label_indices(n, _every(n, band, widest), {peak, n - 1} if n else set())
    values = []  # written after every bar, so no later (taller) bar covers them
    for i, day in enumerate(buckets):
        x = left + i * band + (band - bar_w) / 2
        base = Decimal(0)
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            y_top, y_bottom = y(base + value), y(base)
            height_px = max(0.5, y_bottom - y_top)
            rect = f'<rect x="{x:.1f}" y="{y_top:.1f}" width="{bar_w:.1f}" height="{height_px:.1f}" class="{s.css}"/>'
            href = bucket_href(day, s) if bucket_href else s.href
            parts.append(_link(href, rect, f"{s.label} · {bucket_label(day, period)}: {usd(value)}"))
            base += value
        if totals[i] > 0 and i in labelled:
            # the first and last labels are kept inside the chart
            cx = min(max(x + bar_w / 2, left + text_width(usd(totals[i])) / 2), width - text_width(usd(totals[i])) / 2)
            values.append(_text(cx, y(totals[i]) - 5, usd(totals[i]), "chart-value", "middle"))
    parts += values
    date_every = _every(n, band, CHAR_WIDTH * (8 if period == "month" else 6))
    for i, day in enumerate(buckets):
        if i % date_every == 0:
            parts.append(
                _text(
                    left + i * band + band / 2, height - bottom + 16, bucket_label(day, period), "chart-axis", "middle"
                )
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - data escaped where it goes in (format_html, _text, _link)


@dataclass
class BarRow:
    label: str
    value: Decimal
    detail: str = ""
    href: str | None = None
    second: Decimal | None = None  # a second bar under the first (estimated vs actual)


def horizontal_bars(
    rows: Sequence[BarRow],
    *,
    label: str,
    testid: str,
    css: str = "chart-s0",
    second_css: str = "chart-s2",
    width: int = 560,
    label_width: int = 190,
    names: tuple[str, str] = ("", ""),
) -> SafeString:
    """One bar per row, its label on the left (truncated, full text on hover and in the table) and its
    value written at the end of the bar. With ``second`` set, a thinner second bar under each (``names``
    say what the two are, for the hover title). ``label_width`` is the room for the labels at the widest;
    a narrow chart gives them a third of its width at most."""
    paired = any(r.second is not None for r in rows)
    row_h = 34 if paired else 24
    top = 6
    height = top + row_h * max(len(rows), 1) + 6
    label_width = min(label_width, max(110, int(width * 0.34)))
    value_w = max([text_width(usd(r.value)) for r in rows] + [text_width(usd(r.second or 0)) for r in rows] + [0.0])
    plot_w = width - label_width - value_w - 14
    top_value = max([float(r.value) for r in rows] + [float(r.second or 0) for r in rows] + [0.0])
    scale = plot_w / top_value if top_value > 0 else 0
    parts = [_svg_open(width, height, label, testid)]
    max_chars = int(label_width / (CHAR_WIDTH * 0.9)) - 1
    for i, r in enumerate(rows):
        y0 = top + i * row_h
        text = r.label if len(r.label) <= max_chars else r.label[: max_chars - 1] + "…"
        bar_h = 12 if paired else 16
        bars = format_html(
            '<rect x="{}" y="{}" width="{}" height="{}" rx="2" class="{}"/>',
            label_width,
            y0 + 3,
            f"{max(1.0 if r.value > 0 else 0.0, float(r.value) * scale):.1f}",
            bar_h,
            css,
        )
        end = label_width + float(r.value) * scale
        bars += _text(end + 5, y0 + 3 + bar_h - 3, usd(r.value), "chart-value")
        if paired:
            second = r.second or Decimal(0)
            bars += format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" rx="2" class="{}"/>',
                label_width,
                y0 + 3 + bar_h + 2,
                f"{max(1.0 if second > 0 else 0.0, float(second) * scale):.1f}",
                bar_h - 2,
                second_css,
            )
            bars += _text(label_width + float(second) * scale + 5, y0 + 3 + 2 * bar_h - 2, usd(second), "chart-axis")
        inner = _text(label_width - 8, y0 + 3 + bar_h - 3, text, "chart-label", "end") + bars
        if paired:
            title = f"{r.label}: {names[0]} {usd(r.value)}, {names[1]} {usd(r.second or 0)}"
        else:
            title = f"{r.label}: {usd(r.value)}"
        parts.append(_link(r.href, inner, title))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - data escaped where it goes in (format_html, _text, _link)


def burndown(
    *,
    period_start: date,
    period_end: date,
    amount: Decimal,
    daily: dict[date, Decimal],
    today: date,
    projection: Sequence[tuple[date, Decimal, Decimal, Decimal]],
    runout_on: date | None,
    label: str,
    testid: str,
    width: int = 560,
    height: int = 220,
) -> SafeString:
    """Budget remaining over the period: the actual line up to today, the forecast (dashed) from today
    to the period's end with its 95 % band, the zero line, and the run-out day marked. The y axis runs
    over round ticks from the lowest forecast to the budget, so a forecast far below zero widens the
    steps instead of crowding the labels."""
    days = (period_end - period_start).days
    top, bottom, right = 18, 30, 16
    plot_h = height - top - bottom
    remaining_actual = []
    cumulative = Decimal(0)
    for i in range((today - period_start).days + 1):
        day = period_start + timedelta(days=i)
        cumulative += daily.get(day, Decimal(0))
        remaining_actual.append((i + 1, amount - cumulative))
    projected = [((d - period_start).days + 1, amount - e, amount - hi, amount - lo) for d, e, lo, hi in projection]
    values = [float(amount)] + [float(v) for _, v in remaining_actual] + [float(p[2]) for p in projected]
    tick_values = nice_ticks(min(values), max(values), _max_ticks(plot_h))
    y_bottom, y_top = tick_values[0], tick_values[-1]
    left = _left_margin(tick_values)
    plot_w = width - left - right
    span = y_top - y_bottom or 1.0
    x = lambda i: left + i / max(days, 1) * plot_w  # noqa: E731
    y = lambda v: top + (y_top - float(v)) / span * plot_h  # noqa: E731
    parts = [_svg_open(width, height, label, testid)]
    parts += _y_axis(tick_values, y, left, width - right)
    # the budget's amount at the start, the line to zero a steady burn would follow
    parts.append(
        format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" class="chart-ideal"/>',
            f"{x(0):.1f}",
            f"{y(amount):.1f}",
            f"{x(days):.1f}",
            f"{y(0):.1f}",
        )
    )
    if projected:
        start_point = remaining_actual[-2] if len(remaining_actual) > 1 else (0, amount)
        band = [(x(start_point[0]), y(start_point[1]))] + [(x(i), y(hi)) for i, _, hi, _ in projected]
        band += [(x(i), y(lo)) for i, _, _, lo in reversed(projected)]
        parts.append(
            format_html('<polygon points="{}" class="chart-band"/>', " ".join(f"{a:.1f},{b:.1f}" for a, b in band))
        )
        line = [(x(start_point[0]), y(start_point[1]))] + [(x(i), y(e)) for i, e, _, _ in projected]
        parts.append(
            format_html('<polyline points="{}" class="chart-forecast"/>', " ".join(f"{a:.1f},{b:.1f}" for a, b in line))
        )
        end_i, end_v = projected[-1][0], projected[-1][1]
        # under the end of the forecast line, right-aligned (the "left now" label sits above the dot)
        parts.append(
            _text(
                x(end_i),
                min(y(end_v) + 16, top + plot_h + 12),
                f"forecast {usd(end_v)} left at the end",
                "chart-forecast-label",
                "end",
            )
        )
    actual = [(x(0), y(amount))] + [(x(i), y(v)) for i, v in remaining_actual[:-1]]
    if len(actual) > 1:
        parts.append(
            format_html('<polyline points="{}" class="chart-actual"/>', " ".join(f"{a:.1f},{b:.1f}" for a, b in actual))
        )
    now_i, now_v = remaining_actual[-1]
    parts.append(
        format_html('<circle cx="{}" cy="{}" r="3.5" class="chart-dot"/>', f"{x(now_i):.1f}", f"{y(now_v):.1f}")
    )
    now_text = f"{usd(now_v)} left now"
    near_end = x(now_i) + 6 + text_width(now_text) > width - right
    parts.append(
        _text(x(now_i) + (-6 if near_end else 6), y(now_v) - 8, now_text, "chart-value", "end" if near_end else "start")
    )
    if runout_on is not None and period_start <= runout_on < period_end:
        rx = x((runout_on - period_start).days + 1)
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="chart-runout"/>',
                f"{rx:.1f}",
                f"{rx:.1f}",
                top,
                top + plot_h,
            )
        )
        runs_out = f"runs out {bucket_label(runout_on, 'day')}"
        fits_left = rx - 4 - text_width(runs_out) >= left
        parts.append(
            _text(rx + (-4 if fits_left else 4), top + 10, runs_out, "chart-danger", "end" if fits_left else "start")
        )
    for i in sorted({0, days // 2, days}):
        day = period_start + timedelta(days=i) if i < days else period_end - timedelta(days=1)
        anchor = "start" if i == 0 else ("end" if i == days else "middle")
        parts.append(_text(x(i), height - bottom + 16, bucket_label(day, "day"), "chart-axis", anchor))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - data escaped where it goes in (format_html, _text, _link)


def legend_items(series: Sequence[Series]) -> list[dict]:
    """For the HTML legend under a chart: label, swatch class and link."""
    return [{"label": s.label, "css": s.css.replace("chart-", "swatch-"), "href": s.href} for s in series]
