"""The Cost page in Chromium over seed_demo's 60 days of usage: every chart drawn with its labels and
legend, the numbers behind a chart open as a table, a bar drills down (template filter, instance page),
the filters apply, no CSP violation; screenshots in test-artifacts/screenshots/."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import wait_ready

pytestmark = pytest.mark.browser

VIOLATION = re.compile(r"Content Security Policy|Refused to (execute|apply|load|connect|evaluate)", re.I)


def test_cost_page_charts_tables_and_drill_down(page, sign_in, shot, arm_server):
    problems = []
    page.on("console", lambda msg: problems.append(msg.text) if VIOLATION.search(msg.text) else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    sign_in("acme-viewer")
    page.goto(f"{arm_server.url}/cost/")
    wait_ready(page)

    spend = page.get_by_test_id("chart-spend")
    expect(spend).to_be_visible()
    assert spend.locator("rect").count() > 40  # 30 days, stacked
    assert spend.locator("text.chart-value").count() >= 5  # totals written on the bars
    expect(page.get_by_test_id("spend-legend").locator("li").first).to_be_visible()
    for testid in ("chart-agents", "chart-models", "chart-burndown", "chart-estimates"):
        expect(page.get_by_test_id(testid).first).to_be_visible()
    expect(page.get_by_test_id("chart-burndown").first.locator(".chart-forecast")).to_have_count(1)
    mtd = page.get_by_test_id("cost-mtd").inner_text()
    assert mtd.startswith("$") and mtd != "$0.00"
    expect(page.get_by_test_id("budget-card").first).to_contain_text("Forecast for the period")
    shot("top")

    # the numbers behind a chart
    page.locator("details", has=page.get_by_test_id("spend-table")).locator("summary").click()
    expect(page.get_by_test_id("spend-table")).to_be_visible()
    assert page.get_by_test_id("spend-table").locator("tbody tr").count() == 30
    page.get_by_test_id("chart-burndown").first.scroll_into_view_if_needed()
    shot("budgets")
    page.get_by_test_id("cost-table").scroll_into_view_if_needed()
    shot("limits")

    # drill down: a template's segment filters the page by that template
    page.get_by_test_id("chart-spend").locator("a.chart-link").first.click()
    wait_ready(page)
    assert "template=" in page.url
    expect(page.locator("#c-template option:checked")).not_to_have_text("Any template")
    shot("template")

    # an agent's bar opens the instance
    page.get_by_test_id("chart-agents").locator("a").first.click()
    page.wait_for_url(re.compile(r"/instances/[0-9a-f-]{36}/"))

    # filters: per week over 60 days
    page.goto(f"{arm_server.url}/cost/")
    wait_ready(page)
    page.select_option("#c-period", "week")
    page.fill("#c-since", page.locator("#c-since").input_value()[:8] + "01")
    page.get_by_role("button", name="Apply").click()
    wait_ready(page)
    assert "period=week" in page.url
    expect(page.locator("#spend-title")).to_contain_text("week")
    shot("weekly")
    assert problems == []


def test_cost_page_for_a_range_without_usage(page, sign_in, shot, arm_server):
    """A range before any usage: zero in range, the month's cards still filled (the tenant-wide empty
    state is tested in tests/ledger/test_cost_page.py: every seeded tenant has usage)."""
    sign_in("acme-viewer")
    page.goto(f"{arm_server.url}/cost/?since=2001-01-01&until=2001-01-31")
    wait_ready(page)
    expect(page.get_by_test_id("cost-range-total")).to_have_text("$0.00")
    shot()
