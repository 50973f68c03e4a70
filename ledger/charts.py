"""Server-rendered SVG charts for the Cost page: no JavaScript library, no CDN, nothing inline the
Content-Security-Policy would refuse (no ``style=`` attribute, no script). Colours come from CSS classes
of the theme (``chart-s0`` … in ``theme/static_src/src/styles.css``), text sizes from SVG presentation
attributes. Every chart is readable without hovering: axes with labels, the values written next to
the bars or lines, a legend (HTML, next to the chart), and the numbers as a table under it (the
template). Bars are links where they have somewhere to go (drill down).

Pure functions of plain data (dates, Decimals, labels, URLs) returning markup, so they are tested
without a database.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

SERIES_CLASSES = tuple(f"chart-s{i}" for i in range(8))
OTHER_CLASS = "chart-other"
FONT = 11
CHAR_WIDTH = 6.2  # average glyph width at FONT px, to keep labels from colliding


def series_class(index: int) -> str:
    return SERIES_CLASSES[index % len(SERIES_CLASSES)]


def compact_usd(value: Decimal | float) -> str:
    """``$1.2k``, ``$34``, ``$0.56``, ``$0.004``: short enough to sit on a bar."""
    v = float(value)
    sign = "-" if v < 0 else ""
    v = abs(v)
    if v >= 1_000_000:
        text = f"{v / 1_000_000:.1f}M"
    elif v >= 10_000:
        text = f"{v / 1000:.0f}k"
    elif v >= 1000:
        text = f"{v / 1000:.1f}k"
    elif v >= 100:
        text = f"{v:.0f}"
    elif v >= 1:
        text = f"{v:.2f}".rstrip("0").rstrip(".") if v < 10 else f"{v:.1f}".rstrip("0").rstrip(".")
    elif v == 0:
        text = "0"
    elif v >= 0.01:
        text = f"{v:.2f}"
    else:
        text = f"{v:.4f}".rstrip("0")
    return f"{sign}${text.replace('.0k', 'k').replace('.0M', 'M')}"


def nice_ceiling(value: float) -> float:
    """The smallest 1/2/2.5/5 × 10^n at or above ``value`` (the top of the y axis)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10**exponent
        if candidate >= value * 0.9999:
            return candidate
    return 10 ** (exponent + 1)  # pragma: no cover - the loop always returns


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


def _text(x: float, y: float, text: str, css: str = "chart-label", anchor: str = "start") -> str:
    return format_html(
        '<text x="{}" y="{}" text-anchor="{}" class="{}">{}</text>', f"{x:.1f}", f"{y:.1f}", anchor, css, text
    )


def _link(href: str | None, inner: str, title: str) -> str:
    titled = format_html("<title>{}</title>{}", title, mark_safe(inner))  # noqa: S308 - built here
    if not href:
        return format_html("<g>{}</g>", titled)
    return format_html('<a href="{}" class="chart-link">{}</a>', href, titled)


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
    left, right, top, bottom = 62, 12, 22, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_ceiling(float(max(totals, default=0)))
    band = plot_w / max(n, 1)
    bar_w = max(1.0, band * 0.72)
    y = lambda v: top + plot_h - float(v) / top_value * plot_h  # noqa: E731
    parts = [_svg_open(width, height, label, testid)]
    for t in ticks(top_value):
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="chart-grid"/>',
                left,
                width - right,
                f"{y(t):.1f}",
                f"{y(t):.1f}",
            )
        )
        parts.append(_text(left - 6, y(t) + 4, compact_usd(t), "chart-axis", "end"))
    peak = max(range(n), key=lambda i: totals[i]) if n else -1
    labelled = label_indices(n, _every(n, band, CHAR_WIDTH * 6), {peak, n - 1} if n else set())
    for i, day in enumerate(buckets):
        x = left + i * band + (band - bar_w) / 2
        base = Decimal(0)
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            y_top, y_bottom = y(base + value), y(base)
            rect = format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" class="{}"/>',
                f"{x:.1f}",
                f"{y_top:.1f}",
                f"{bar_w:.1f}",
                f"{max(0.5, y_bottom - y_top):.1f}",
                s.css,
            )
            href = bucket_href(day, s) if bucket_href else s.href
            parts.append(_link(href, rect, f"{s.label} · {bucket_label(day, period)}: {compact_usd(value)}"))
            base += value
        if totals[i] > 0 and i in labelled:
            parts.append(_text(x + bar_w / 2, y(totals[i]) - 5, compact_usd(totals[i]), "chart-value", "middle"))
    date_every = _every(n, band, CHAR_WIDTH * (8 if period == "month" else 6))
    for i, day in enumerate(buckets):
        if i % date_every == 0:
            parts.append(
                _text(
                    left + i * band + band / 2, height - bottom + 16, bucket_label(day, period), "chart-axis", "middle"
                )
            )
    parts.append(
        format_html(
            '<line x1="{}" x2="{}" y1="{}" y2="{}" class="chart-baseline"/>',
            left,
            width - right,
            top + plot_h,
            top + plot_h,
        )
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every piece above is escaped by format_html


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
    say what the two are, for the hover title)."""
    paired = any(r.second is not None for r in rows)
    row_h = 34 if paired else 24
    top = 6
    height = top + row_h * max(len(rows), 1) + 6
    value_w = 70
    plot_w = width - label_width - value_w - 8
    top_value = max([float(r.value) for r in rows] + [float(r.second or 0) for r in rows] + [0.0])
    scale = plot_w / top_value if top_value > 0 else 0
    parts = [_svg_open(width, height, label, testid)]
    max_chars = int(label_width / CHAR_WIDTH) - 1
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
        value_text = compact_usd(r.value)
        end = label_width + float(r.value) * scale
        bars += _text(end + 5, y0 + 3 + bar_h - 3, value_text, "chart-value")
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
            bars += _text(
                label_width + float(second) * scale + 5, y0 + 3 + 2 * bar_h - 2, compact_usd(second), "chart-axis"
            )
        inner = _text(label_width - 8, y0 + 3 + bar_h - 3, text, "chart-label", "end") + bars
        if paired:
            title = f"{r.label}: {names[0]} {compact_usd(r.value)}, {names[1]} {compact_usd(r.second or 0)}"
        else:
            title = f"{r.label}: {compact_usd(r.value)}"
        parts.append(_link(r.href, inner, title))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every piece above is escaped by format_html


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
    to the period's end with its 95 % band, the zero line, and the run-out day marked."""
    days = (period_end - period_start).days
    left, right, top, bottom = 62, 16, 18, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    remaining_actual = []
    cumulative = Decimal(0)
    for i in range((today - period_start).days + 1):
        day = period_start + timedelta(days=i)
        cumulative += daily.get(day, Decimal(0))
        remaining_actual.append((i + 1, amount - cumulative))
    projected = [((d - period_start).days + 1, amount - e, amount - hi, amount - lo) for d, e, lo, hi in projection]
    lowest = min([float(v) for _, v in remaining_actual] + [float(p[2]) for p in projected] + [0.0])
    y_top = nice_ceiling(float(amount))
    y_bottom = -nice_ceiling(-lowest) if lowest < 0 else 0.0
    span = y_top - y_bottom or 1.0
    x = lambda i: left + i / max(days, 1) * plot_w  # noqa: E731
    y = lambda v: top + (y_top - float(v)) / span * plot_h  # noqa: E731
    parts = [_svg_open(width, height, label, testid)]
    shown_ticks = ticks(y_top, 4)
    if y_bottom < 0 and abs(y(y_bottom) - y(0)) >= 14:  # a tick below zero only where its label fits
        shown_ticks.append(y_bottom)
    for t in shown_ticks:
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="{}"/>',
                left,
                width - right,
                f"{y(t):.1f}",
                f"{y(t):.1f}",
                "chart-baseline" if t == 0 else "chart-grid",
            )
        )
        parts.append(_text(left - 6, y(t) + 4, compact_usd(t), "chart-axis", "end"))
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
                f"forecast {compact_usd(end_v)} left at the end",
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
    near_end = x(now_i) > left + plot_w * 0.7
    parts.append(
        _text(
            x(now_i) + (-6 if near_end else 6),
            y(now_v) - 8,
            f"{compact_usd(now_v)} left now",
            "chart-value",
            "end" if near_end else "start",
        )
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
        parts.append(_text(rx - 4, top + 10, f"runs out {bucket_label(runout_on, 'day')}", "chart-danger", "end"))
    for i in sorted({0, days // 2, days}):
        day = period_start + timedelta(days=i) if i < days else period_end - timedelta(days=1)
        anchor = "start" if i == 0 else ("end" if i == days else "middle")
        parts.append(_text(x(i), height - bottom + 16, bucket_label(day, "day"), "chart-axis", anchor))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every piece above is escaped by format_html


def legend_items(series: Sequence[Series]) -> list[dict]:
    """For the HTML legend under a chart: label, swatch class and link."""
    return [{"label": s.label, "css": s.css.replace("chart-", "swatch-"), "href": s.href} for s in series]
