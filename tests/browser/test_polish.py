"""Polish found in issue 26: provider names on the Federation cards are not cut while the card has
room; creating a template ends in a toast that offers the next step (a link to its first version); the
API reference's dark theme writes code and small type at WCAG AA contrast."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import wait_ready, wait_settled

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", (1280, 1024))
def test_provider_names_are_shown_whole(width, sign_in, arm_server, shot):
    page = sign_in("acme-operator")
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{arm_server.url}/federation/")
    wait_ready(page)
    names = page.get_by_test_id("provider-name")
    assert names.count() >= 2
    for name in names.all():
        fits = name.evaluate("e => e.scrollWidth <= e.clientWidth && e.scrollHeight <= e.clientHeight + 1")
        assert fits, name.inner_text()
    expect(names.filter(has_text=re.compile(r"^partner-cloud$"))).to_have_count(1)
    shot(f"{width}")


def test_a_new_template_toast_offers_its_first_version(sign_in, shot):
    page = sign_in("acme-operator")
    name = f"toast-{uuid.uuid4().hex[:8]}"
    page.get_by_test_id("new-template").click()
    wait_settled(page)
    page.fill("#id_name", name)
    page.fill("#id_owners", "qa@example.com")
    page.locator("#modal-root").get_by_role("button", name=re.compile("Create|Save")).click()
    toast = page.locator(".toast", has_text=f"Template {name} created.")
    expect(toast).to_be_visible()
    link = toast.get_by_test_id("toast-add-version")
    expect(link).to_have_text("Add its first version")
    shot("toast")
    page.wait_for_timeout(5500)  # longer than a plain toast lives: this one waits to be used
    expect(link).to_be_visible()
    link.click()
    form = page.get_by_test_id("modal")
    expect(form).to_contain_text("New version")
    expect(page.locator("#id_template option:checked")).to_have_text(re.compile(name))
    expect(toast).to_have_count(0)
    shot("version-modal")


CONTRAST = open(__file__.replace("test_polish.py", "contrast.js")).read()


def test_swagger_code_and_small_type_meet_wcag_aa(page, arm_server, shot):
    page.goto(f"{arm_server.url}/api/docs/")
    page.wait_for_selector(".opblock")
    summaries = page.locator(".opblock-summary")
    for i in (0, 1, 2):  # a list, a create (request body, examples), a detail
        summaries.nth(i).click()
    models = page.locator("section.models .model-box")
    if models.count() == 0:  # the Schemas section starts collapsed in some Swagger UI versions
        page.locator("section.models h4").click()
    models.first.click()
    page.wait_for_timeout(300)
    texts = page.evaluate(CONTRAST, ".swagger-ui *")
    assert len(texts) > 200
    low = {(t["el"], t["fg"], t["bg"], t["ratio"]) for t in texts if t["ratio"] < t["needed"]}
    assert low == set()
    shot()
