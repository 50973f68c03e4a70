"""The lifecycle of an instance in its drawer, as an operator sees it at 1280 and 1024 px: the state
diagram with every transition and the current state marked, every way out as a button, the refused ones
disabled with their reason (Retire from ACTIVE: drain first), diagram text at least 11 px and nothing
outside the drawer. The version drawer's diagram is held to the same text size."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import wait_ready, wait_settled
from tests.browser.fit import cut, small_svg_text

pytestmark = pytest.mark.browser

INSIDE = """(el) => {
  const box = el.getBoundingClientRect(), drawer = el.closest("aside").getBoundingClientRect();
  return box.left >= drawer.left && box.right <= drawer.right;
}"""


@pytest.mark.parametrize("width", (1280, 1024))
def test_the_instance_drawer_shows_every_transition_and_why_retire_waits(width, sign_in, arm_server, shot):
    page = sign_in("acme-operator")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{arm_server.url}/directory/instances/?search=support-eu-1&state=ACTIVE")
    wait_ready(page)
    page.get_by_test_id("instance-row").filter(has_text="support-eu-1").first.click()
    drawer = page.get_by_test_id("instance-drawer")
    expect(drawer).to_be_visible()
    wait_settled(page)
    flow = drawer.get_by_test_id("state-flow")
    expect(flow).to_be_visible()
    expect(flow.locator('[data-current="true"]')).to_have_text("ACTIVE")
    assert flow.locator("[data-edge]").count() == 17  # every transition the instance FSM declares
    assert small_svg_text(flow) == []
    assert flow.evaluate(INSIDE)

    for target in ("PAUSED", "READONLY", "DRAINING", "QUARANTINED"):
        expect(drawer.get_by_test_id(f"transition-{target}")).to_be_enabled()
    retire = drawer.get_by_test_id("transition-RETIRED")
    expect(retire).to_be_disabled()
    expect(drawer.get_by_test_id("why-RETIRED")).to_have_text(
        "Not directly from ACTIVE: drain first (ACTIVE → DRAINING → RETIRED)"
    )
    assert cut(page, '[data-testid="instance-drawer"]') == []
    drawer.get_by_test_id("instance-lifecycle").scroll_into_view_if_needed()
    shot(f"{width}-instance-drawer")


@pytest.mark.parametrize("width", (1280, 1024))
def test_the_version_drawer_diagram_text_is_not_scaled_down(width, sign_in, arm_server, shot):
    page = sign_in("acme-viewer")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{arm_server.url}/directory/versions/?lifecycle_state=APPROVED")
    wait_ready(page)
    page.get_by_test_id("version-row").first.click()
    drawer = page.get_by_test_id("version-drawer")
    flow = drawer.get_by_test_id("state-flow")
    expect(flow).to_be_visible()
    expect(flow.locator('[data-current="true"]')).to_have_text("APPROVED")
    assert small_svg_text(flow) == []
    assert flow.evaluate(INSIDE)
    shot(f"{width}-version-drawer")
