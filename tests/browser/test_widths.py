"""At the widths of common laptops (1280 px, and 1024 px where the sidebar still shows) every list page
shows its action column, every filter and every card's content without sideways scrolling or clipping
(``tests/browser/fit.py`` says what counts as cut). The long names ``conftest.SEED_LONG_NAMES`` adds are
on these pages, so the truncation of names is exercised too."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import wait_ready
from tests.browser.fit import cut

pytestmark = pytest.mark.browser

WIDTHS = (1280, 1024)
LIST_PAGES = [
    ("templates", "/directory/templates/"),
    ("versions", "/directory/versions/"),
    ("instances", "/directory/instances/"),
    ("policies", "/policies/"),
    ("approvals", "/approvals/"),
    ("audit", "/audit/"),
    ("cost", "/cost/"),
    ("prices", "/cost/prices/"),
    ("members", "/settings/members/"),
    ("api-keys", "/settings/api-keys/"),
    ("my-keys", "/settings/my-keys/"),
    ("notifications", "/settings/notifications/"),
    ("federation", "/federation/"),
    ("evaluations", "/evaluations/"),
    ("incidents", "/incidents/"),
]
# The action buttons of each row (the columns the findings of issue 26 lost at 1280 px).
ROW_ACTIONS = {
    "templates": ("template-row", ("Edit", "Version")),
    "api-keys": ("api-key-table", ("Revoke",)),
    "prices": ("price-table", ("Remove",)),
    "notifications": ("endpoint-table", ("Send a test event",)),
}


def at_width(page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    assert page.evaluate("document.documentElement.clientWidth") == width


@pytest.mark.parametrize("width", WIDTHS)
def test_every_list_page_shows_its_actions_and_filters_uncut(width, sign_in, arm_server, shot):
    page = sign_in("acme-admin")  # admin: every action column is there
    at_width(page, width)
    problems = {}
    for name, path in LIST_PAGES:
        page.goto(f"{arm_server.url}{path}")
        wait_ready(page)
        expect(page.locator("main h1").first).to_be_visible()
        found = cut(page)
        if found:
            problems[path] = found
        shot(f"{width}-{name}")
        if name in ROW_ACTIONS:
            testid, labels = ROW_ACTIONS[name]
            for label in labels:
                button = page.get_by_test_id(testid).get_by_role("button", name=label).first
                expect(button).to_be_visible()
    assert not problems, problems


@pytest.mark.parametrize("width", WIDTHS)
def test_an_opened_audit_payload_and_recent_decisions_stay_in_their_cards(width, sign_in, arm_server, shot):
    page = sign_in("acme-admin")
    at_width(page, width)
    page.goto(f"{arm_server.url}/audit/")
    wait_ready(page)
    page.get_by_test_id("audit-table").locator("summary").first.click()
    expect(page.get_by_test_id("audit-table").locator("details[open] pre")).to_be_visible()
    assert cut(page) == []
    shot(f"{width}-audit-payload")

    page.goto(f"{arm_server.url}/policies/?search=support-standard")
    wait_ready(page)
    page.get_by_test_id("policy-table").get_by_role("link", name="support-standard").click()
    wait_ready(page)
    decisions = page.get_by_test_id("recent-decision")
    expect(decisions.first).to_be_visible()
    assert decisions.count() >= 3
    assert cut(page) == []
    shot(f"{width}-policy-editor")
