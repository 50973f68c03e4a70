"""The Cost page's charts at every width from a wide screen to a phone: the chart shown is the rendering
that fits its box (ledger.charts.responsive, ui.js), so no chart text is drawn under 11 px (issue 26
found 6-8 px at 820 px); a figure reads the same on a chart and in its table; the burn-down's axis
labels stay apart."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ledger.charts import CHART_WIDTHS
from tests.browser.conftest import wait_ready
from tests.browser.fit import cut, small_svg_text

pytestmark = pytest.mark.browser

WIDTHS = (1440, 1280, 1024, 820, 600, 390)


@pytest.mark.parametrize("width", WIDTHS)
def test_chart_text_is_never_drawn_under_11_px(width, sign_in, arm_server, shot):
    page = sign_in("acme-viewer")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{arm_server.url}/cost/")
    wait_ready(page)
    boxes = page.locator("[data-chart-variants]")
    assert boxes.count() >= 5  # spend, agents, models, a burn-down per budget, estimates
    small = {}
    for i in range(boxes.count()):
        box = boxes.nth(i)
        box.scroll_into_view_if_needed()
        expect(box.locator(":scope > svg")).to_have_count(1)  # one rendering in the page
        svg = box.locator(":scope > svg")
        if found := small_svg_text(svg):
            small[svg.get_attribute("data-testid")] = found[:3]
        shown = int(box.get_attribute("data-chart-shown"))
        room = box.evaluate("b => b.clientWidth")
        assert shown <= room or shown == CHART_WIDTHS[0], (shown, room)  # the widest that fits, or the narrowest
    assert small == {}
    assert [c for c in cut(page) if c["what"] == "page scrolls sideways"] == []
    page.get_by_test_id("chart-spend").scroll_into_view_if_needed()
    shot(f"{width}-spend")
    page.get_by_test_id("chart-burndown").first.scroll_into_view_if_needed()
    shot(f"{width}-burndown")


def test_a_resize_swaps_in_the_rendering_that_fits(sign_in, arm_server):
    page = sign_in("acme-viewer")
    page.goto(f"{arm_server.url}/cost/")
    wait_ready(page)
    spend = page.locator("[data-chart-variants]", has=page.get_by_test_id("chart-spend"))
    wide = int(spend.get_attribute("data-chart-shown"))
    page.set_viewport_size({"width": 820, "height": 900})
    expect(spend).not_to_have_attribute("data-chart-shown", str(wide))
    assert small_svg_text(spend.locator(":scope > svg")) == []
    page.set_viewport_size({"width": 1440, "height": 900})  # and back: every rendering kept once
    expect(spend).to_have_attribute("data-chart-shown", str(wide))
    expect(spend.locator(":scope > svg")).to_have_count(1)
    expect(spend.locator(":scope > template")).to_have_count(len(CHART_WIDTHS) - 1)


def test_a_figure_reads_the_same_on_the_chart_and_in_its_table(sign_in, arm_server):
    page = sign_in("acme-viewer")
    page.goto(f"{arm_server.url}/cost/")
    wait_ready(page)
    chart_values = page.get_by_test_id("chart-agents").locator("text.chart-value").all_text_contents()
    table_values = page.get_by_test_id("agents-table").locator("tbody tr td:nth-child(2)").all_text_contents()
    assert chart_values and chart_values == [v.strip() for v in table_values]
    assert all(re.fullmatch(r"-?\$[\d,]+\.\d\d|\$0\.\d{3,4}", v) for v in chart_values), chart_values


def test_the_burndown_axis_labels_stay_apart(sign_in, arm_server):
    page = sign_in("acme-viewer")
    page.goto(f"{arm_server.url}/cost/")
    wait_ready(page)
    for svg in page.get_by_test_id("chart-burndown").all():
        tops = sorted(
            svg.locator("text.chart-axis").evaluate_all(
                "els => els.filter(e => /^-?\\$/.test(e.textContent)).map(e => e.getBoundingClientRect().top)"
            )
        )
        assert len(tops) >= 3
        assert min(b - a for a, b in zip(tops, tops[1:], strict=False)) >= 16, tops
