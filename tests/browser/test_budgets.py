"""Budgets on the Cost page, as a compliance officer without admin access uses them: creating one in the
New budget modal (an error first, shown next to its field, nothing typed lost), seeing it listed, and
acknowledging a budget alert, which then leaves the banner and is listed with who acknowledged it.
Screenshots go to test-artifacts/screenshots/."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import wait_ready

pytestmark = pytest.mark.browser


def test_compliance_creates_a_budget_and_acknowledges_an_alert(sign_in, shot, arm_server):
    page = sign_in("acme-compliance")
    page.goto(f"{arm_server.url}/cost/")
    wait_ready(page)

    page.get_by_test_id("new-budget").click()
    modal = page.get_by_test_id("modal")
    expect(modal).to_be_visible()
    modal.locator("#id_name").fill("Browser weekly check")
    modal.locator("#id_scope").select_option("tag")  # a tag budget without its tag: refused
    modal.locator("#id_amount_usd").fill("120")
    modal.locator("#id_thresholds").fill("75, 100")
    modal.get_by_test_id("budget-submit").click()
    expect(modal.locator('[data-field-error="tag"]')).to_contain_text("needs a tag")
    expect(modal.locator("#id_amount_usd")).to_have_value("120")
    shot("validation-error")
    modal.locator("#id_tag").fill("support")
    modal.get_by_test_id("budget-submit").click()

    expect(page.get_by_test_id("modal")).to_have_count(0)
    expect(page.locator(".toast").filter(has_text="Budget Browser weekly check created.")).to_be_visible()
    card = page.get_by_test_id("budget-card").filter(has_text="Browser weekly check")
    expect(card).to_contain_text("tag support")

    banner = page.get_by_test_id("budget-alert-banner")
    expect(banner).to_be_visible()
    badge = page.get_by_test_id("budget-alert-badge")
    open_before = int(badge.inner_text().split()[0])  # every open alert, the banner shows the newest
    assert open_before > 0  # the demo's budgets cross their thresholds
    first = banner.get_by_test_id("budget-alert").first
    expect(first).to_contain_text("crossed")
    first.get_by_test_id("ack-alert").click()
    wait_ready(page)
    expect(page.locator(".toast").filter(has_text="acknowledged")).to_be_visible()
    acknowledged = page.get_by_test_id("budget-alerts-acknowledged")
    acknowledged.locator("summary").click()
    expect(acknowledged).to_contain_text("acknowledged by user:acme-compliance")
    if open_before > 1:
        expect(page.get_by_test_id("budget-alert-badge")).to_have_text(
            f"{open_before - 1} alert" + "s" * (open_before > 2)
        )
    else:
        expect(page.get_by_test_id("budget-alert-banner")).to_have_count(0)
    shot()
