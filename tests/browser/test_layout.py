"""Layout at the widths operators use: tables with very long names stay inside their card at 1440 px
(names truncated with the full text on hover, action buttons visible), and below 1024 px the sidebar
collapses behind a menu button."""

from __future__ import annotations

import re

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


PLACEHOLDER_FITS = """(input) => {
    const style = getComputedStyle(input);
    const ctx = document.createElement("canvas").getContext("2d");
    ctx.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return {text: ctx.measureText(input.placeholder).width, room: room};
}"""


def test_below_1024_the_sidebar_collapses_behind_a_menu_button(page, sign_in, shot, arm_server):
    sign_in("acme-operator")  # at 1440 px: it waits for the user name in the sidebar
    page.set_viewport_size({"width": 900, "height": 900})
    page.reload()
    wait_ready(page)
    sidebar = page.locator("#sidebar")
    menu = page.get_by_test_id("menu-button")
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(sidebar.get_by_role("link", name="Policies")).not_to_be_visible()
    # The content gets the full width: nothing overflows the page, and the search keeps its placeholder.
    assert page.evaluate("document.documentElement.scrollWidth") <= 900
    search = page.locator("#global-search")
    fit = search.evaluate(PLACEHOLDER_FITS)
    assert fit["text"] <= fit["room"], fit
    assert search.bounding_box()["x"] >= 0
    shot("closed")

    # Keyboard: Tab reaches the menu button first, Enter opens the menu with focus inside, Esc closes it.
    page.keyboard.press("Tab")
    expect(menu).to_be_focused()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(sidebar.get_by_role("link", name="Policies")).to_be_visible()
    expect(sidebar.locator(":focus")).to_have_count(1)
    shot("open")
    page.keyboard.press("Escape")
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()
    expect(sidebar.get_by_role("link", name="Policies")).not_to_be_visible()

    # Open with a click, follow a link.
    menu.click()
    sidebar.get_by_role("link", name="Policies").click()
    expect(page).to_have_url(re.compile("/policies/"))
    expect(page.get_by_test_id("menu-button")).to_have_attribute("aria-expanded", "false")


def test_global_search_page_shows_every_kind(sign_in, shot, arm_server):
    page = sign_in("acme-operator")
    page.locator("#global-search").fill("support")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("/search/"))
    for kind in ("templates", "versions", "instances"):
        expect(page.get_by_test_id(f"search-{kind}")).to_be_visible()
    expect(page.get_by_test_id("search-templates")).to_contain_text("support-bot")
    expect(page.get_by_test_id("search-instances").locator("li").first).to_contain_text("support")
    shot()
    page.get_by_test_id("search-all-instances").click()
    expect(page).to_have_url(re.compile(r"/directory/instances/\?search=support"))
