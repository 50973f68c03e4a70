"""Every select is drawn in the theme (dark field, border, rounded, padded), whether or not its widget
carries the ``input`` class: issue 26 found the New-instance modal's Policy select unstyled (Chromium's
default, white text on nothing), because that field is added after StyledForm has styled the form."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import wait_ready, wait_settled
from tests.browser.test_widths import LIST_PAGES

pytestmark = pytest.mark.browser

LOOK = """(el) => {
  const s = getComputedStyle(el);
  return {background: s.backgroundColor, border: s.borderTopColor, radius: s.borderTopLeftRadius,
          padding: s.paddingLeft, font: s.fontSize, color: s.color};
}"""
# The look of a select of the theme, read from one that has the ``input`` class.
REFERENCE = "#modal-root select.input"


def looks(page, selector: str) -> dict[str, dict]:
    return {
        el.get_attribute("name") or el.get_attribute("id") or str(i): el.evaluate(LOOK)
        for i, el in enumerate(page.locator(selector).all())
        if el.is_visible()
    }


def test_every_select_of_the_new_instance_modal_looks_like_the_theme(sign_in, shot):
    page = sign_in("acme-operator")
    page.get_by_test_id("new-instance").click()
    expect(page.get_by_test_id("instance-form")).to_be_visible()
    wait_settled(page)
    reference = page.locator(REFERENCE).first.evaluate(LOOK)
    assert reference["background"] not in ("rgba(0, 0, 0, 0)", "transparent")
    selects = looks(page, "#modal-root select")
    assert {"version", "environment", "provider", "policy"} <= set(selects)
    assert {name: look for name, look in selects.items() if look != reference} == {}
    shot()


def test_every_select_on_the_list_pages_looks_like_the_theme(sign_in, arm_server):
    page = sign_in("acme-admin")
    page.get_by_test_id("new-instance").click()
    expect(page.get_by_test_id("instance-form")).to_be_visible()
    reference = page.locator(REFERENCE).first.evaluate(LOOK)
    odd = {}
    for _, path in LIST_PAGES:
        page.goto(f"{arm_server.url}{path}")
        wait_ready(page)
        for name, look in looks(page, "main select").items():
            # Widths and paddings differ on purpose (compact selects); the field's colours and corners do not.
            if (look["background"], look["border"], look["radius"]) != (
                reference["background"],
                reference["border"],
                reference["radius"],
            ):
                odd[f"{path} {name}"] = look
    assert odd == {}
