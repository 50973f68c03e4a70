"""The policy editor in headless Chromium: a failed save lists every problem at the top and puts the
focus on the first bad field; attaching to an instance that runs under another policy asks first."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import wait_ready

pytestmark = pytest.mark.browser


def test_a_failed_save_shows_an_error_summary_and_focuses_the_first_bad_field(sign_in, arm_server, shot):
    page = sign_in("acme-compliance")
    page.goto(f"{arm_server.url}/policies/new/")
    wait_ready(page)
    page.fill("#id_cost_limit_daily_usd", "-5")
    page.get_by_role("button", name="Create policy").click()
    wait_ready(page)

    summary = page.get_by_test_id("error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("The policy was not saved")
    expect(summary.get_by_role("link", name="Name")).to_be_visible()
    expect(summary).to_contain_text("Daily cost limit")
    expect(page.locator("#id_name")).to_be_focused()
    expect(page.locator("#id_cost_limit_daily_usd")).to_have_value("-5")  # nothing typed is lost
    shot()


def test_attaching_over_another_policy_asks_before_replacing_it(sign_in, arm_server, shot):
    page = sign_in("acme-compliance")
    page.goto(f"{arm_server.url}/policies/new/")
    page.fill("#id_name", "browser-replacer")
    page.locator("input[name=autonomy_tier][value='3']").check()
    page.fill("#id_allowed_tools", "*")
    page.get_by_role("button", name="Create policy").click()
    expect(page).to_have_url(re.compile(r"/policies/[0-9a-f-]{36}/$"))

    select = page.get_by_label("Instance to attach")
    expect(select).to_have_value("")  # nothing preselected: one click cannot move an instance by accident
    option = select.locator("option", has_text="(now: ").first
    label = option.inner_text()
    current = re.search(r"\(now: (.+)\)$", label).group(1)
    select.select_option(label=label)
    page.get_by_role("button", name="Attach", exact=True).click()
    wait_ready(page)

    confirm = page.get_by_test_id("confirm-replace")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text(f"Replace {current}")
    expect(page.get_by_test_id("confirm-replace-button")).to_be_focused()
    shot("confirm")
    page.get_by_test_id("confirm-replace-button").click()
    wait_ready(page)
    expect(page.get_by_text(f"moved from {current} to browser-replacer")).to_be_visible()
    instance_name = label.split(" — ")[0]
    expect(page.locator("#attach")).to_contain_text(instance_name)
    shot("replaced")

    # put it back where it was, through the same confirmation
    page.goto(f"{arm_server.url}/policies/")
    page.get_by_role("link", name=current, exact=True).first.click()
    wait_ready(page)
    page.get_by_label("Instance to attach").select_option(
        label=f"{label.rsplit(' (now: ', 1)[0]} (now: browser-replacer)"
    )
    page.get_by_role("button", name="Attach", exact=True).click()
    page.get_by_test_id("confirm-replace-button").click()
    expect(page.get_by_text(f"moved from browser-replacer to {current}")).to_be_visible()
