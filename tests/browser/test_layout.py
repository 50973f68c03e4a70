"""Layout at the widths operators use: tables with very long names stay inside their card at 1440 px
(names truncated with the full text on hover, action buttons visible), and below 1024 px the sidebar
collapses behind a menu button."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LONG_NAME, wait_ready

pytestmark = pytest.mark.browser

FITS = """(table) => {
    const box = table.parentElement;
    return {scroll: box.scrollWidth, client: box.clientWidth, page: document.documentElement.scrollWidth,
            view: document.documentElement.clientWidth};
}"""


def assert_fits(table):
    m = table.evaluate(FITS)
    assert m["scroll"] <= m["client"], m
    assert m["page"] <= m["view"], m


def assert_in_view(locator, page):
    box = locator.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"], box


def test_long_names_do_not_push_tables_out_of_their_card_at_1440(sign_in, shot, arm_server):
    page = sign_in("acme-admin")
    assert page.viewport_size == {"width": 1440, "height": 900}
    page.goto(f"{arm_server.url}/directory/templates/?search={LONG_NAME[:40]}")
    wait_ready(page)
    name = page.get_by_test_id("template-name").filter(has_text=LONG_NAME[:30]).first
    expect(name).to_have_attribute("title", LONG_NAME)
    assert_fits(page.get_by_test_id("directory-table"))
    row = page.get_by_test_id("template-row").filter(has=name)
    for button in (row.get_by_role("button", name="Edit"), row.get_by_role("button", name="Version")):
        expect(button).to_be_visible()
        assert_in_view(button, page)
    shot("templates")

    page.goto(f"{arm_server.url}/directory/instances/")
    wait_ready(page)
    instance = page.get_by_test_id("instance-name").filter(has_text=LONG_NAME[:30]).first
    expect(instance).to_have_attribute("title", f"{LONG_NAME}-instance-1")
    shot("instances")
    assert_fits(page.get_by_test_id("directory-table"))

    page.goto(f"{arm_server.url}/directory/versions/")
    wait_ready(page)
    assert_fits(page.get_by_test_id("directory-table"))

    page.goto(f"{arm_server.url}/settings/api-keys/")
    wait_ready(page)
    key = page.get_by_test_id("key-name").filter(has_text=LONG_NAME[:30]).first
    expect(key).to_have_attribute("title", f"{LONG_NAME}-key")
    shot("api-keys")
    assert_fits(page.get_by_test_id("api-key-table"))
    revoke = page.get_by_test_id("api-key-table").locator("tr").filter(has=key).get_by_role("button", name="Revoke")
    expect(revoke).to_be_visible()
    assert_in_view(revoke, page)
