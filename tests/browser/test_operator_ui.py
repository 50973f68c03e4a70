"""The operator UI in headless Chromium against a seeded ARM server (see conftest.py). Each test saves a
screenshot to test-artifacts/screenshots/."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import APPROVAL_PARAMS_MARKER, wait_ready

pytestmark = pytest.mark.browser

VALID_PROMPT = "sha256:" + "5e" * 32


def open_tab(page, name: str) -> None:
    page.get_by_role("link", name=name, exact=True).click()
    expect(page).to_have_url(re.compile(f"/directory/{name.lower()}/"))
    wait_ready(page)


def version_rows(page):
    return page.locator('[data-testid="version-row"]')


def test_log_in(page, arm_server, shot):
    page.goto(f"{arm_server.url}/directory/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/directory/"))
    page.fill("#id_username", "acme-viewer")
    page.fill("#id_password", "wrong-password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_be_visible()
    shot("wrong-password")
    page.fill("#id_password", arm_server.passwords["acme-viewer"])
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/directory/$"))
    expect(page.get_by_test_id("current-user")).to_have_text("acme-viewer")
    expect(page.get_by_role("heading", name="Directory")).to_be_visible()
    shot()


def test_directory_loads_seeded_data(sign_in, shot):
    page = sign_in("acme-viewer")
    expect(version_rows(page).first).to_be_visible()
    assert version_rows(page).count() >= 5
    expect(page.get_by_test_id("directory-table")).to_contain_text("support-bot")
    shot("versions")
    open_tab(page, "Templates")
    expect(page.locator('[data-testid="template-row"]').first).to_be_visible()
    expect(page.get_by_test_id("directory-table")).to_contain_text("support-bot")
    shot("templates")
    open_tab(page, "Instances")
    expect(page.locator('[data-testid="instance-row"]').first).to_be_visible()
    shot("instances")


def test_search_and_a_filter_narrow_the_list(sign_in, shot):
    page = sign_in("acme-viewer")
    expect(version_rows(page).first).to_be_visible()
    total = int(page.get_by_test_id("result-count").inner_text().replace(",", ""))
    page.fill("#dir-search", "support-bot")
    expect(page).to_have_url(re.compile(r"search=support-bot"))
    expect(page.get_by_test_id("result-count")).not_to_have_text(f"{total:,}")
    searched = int(page.get_by_test_id("result-count").inner_text().replace(",", ""))
    assert 0 < searched < total
    for text in version_rows(page).all_inner_texts():
        assert "support-bot" in text
    page.select_option("#f-state", "APPROVED")
    expect(page).to_have_url(re.compile(r"lifecycle_state=APPROVED"))
    expect(page.get_by_test_id("result-count")).not_to_have_text(f"{searched:,}")
    states = page.locator('[data-testid="version-row"] [data-status]').all()
    assert states, "no rows left"
    for row in version_rows(page).all():
        expect(row.locator("td").nth(1)).to_have_text("APPROVED")
    shot()
    # The URL carries the filters: reloading shows the same list.
    page.reload()
    wait_ready(page)
    expect(page.locator("#f-state")).to_have_value("APPROVED")
    expect(page.locator("#dir-search")).to_have_value("support-bot")


def test_drawer_opens_and_shows_verified(sign_in, shot):
    page = sign_in("acme-viewer")
    row = version_rows(page).first
    row.click()
    drawer = page.get_by_role("dialog")
    expect(drawer).to_be_visible()
    expect(page.get_by_test_id("integrity-badge")).to_have_text(re.compile("VERIFIED"))
    expect(page.get_by_test_id("state-flow")).to_be_visible()
    expect(drawer.locator("#drawer-title")).to_be_focused()
    shot()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(row).to_be_focused()


def test_create_template_and_version_through_the_modals(sign_in, shot):
    page = sign_in("acme-operator")
    name = f"browser-agent-{uuid.uuid4().hex[:6]}"
    page.get_by_test_id("new-template").click()
    modal = page.get_by_role("dialog")
    expect(modal).to_be_visible()
    modal.locator("#id_name").fill(name)
    modal.locator("#id_description").fill("Made by the browser test")
    modal.locator("#id_owners").fill("qa@example.com")
    modal.locator("#id_tags").fill("qa, browser")
    modal.get_by_role("button", name="Create template").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.locator(".toast").filter(has_text=f"Template {name} created")).to_be_visible()

    page.get_by_test_id("new-version").click()
    modal = page.get_by_role("dialog")
    modal.locator("#id_template").select_option(label=name)
    modal.locator("#id_version_label").fill("0.1.0")
    modal.locator("#id_model_provider").fill("openai")
    modal.locator("#id_model_name").fill("gpt-4.1")
    modal.locator("#id_model_parameters").fill('{"temperature": 0.3}')
    modal.locator("#id_prompt_bundle_hash").fill("sha256:not-a-hash")
    hint = modal.locator("[data-no-tools]")
    expect(hint).to_be_visible()
    modal.locator("[data-add-tool]").click()
    expect(hint).to_be_hidden()  # the "No tools" hint goes once a tool row exists
    modal.locator("input[name=tool_name]").last.fill("crm.lookup")
    modal.locator("select[name=tool_risk]").last.select_option("low")
    modal.locator("input[name=tool_scopes]").last.fill("crm:read")
    modal.get_by_role("button", name="Create version").click()
    # The error sits next to the field; everything typed is still there.
    error = page.locator('[data-field-error="prompt_bundle_hash"]')
    expect(error).to_contain_text("sha256:")
    modal = page.get_by_role("dialog")
    expect(modal.locator("#id_prompt_bundle_hash")).to_have_value("sha256:not-a-hash")
    expect(modal.locator("#id_version_label")).to_have_value("0.1.0")
    expect(modal.locator("#id_model_parameters")).to_have_value('{"temperature": 0.3}')
    expect(modal.locator("input[name=tool_name]")).to_have_value("crm.lookup")
    expect(modal.locator("select[name=tool_risk]")).to_have_value("low")
    expect(modal.locator("[data-no-tools]")).to_be_hidden()
    expect(error).not_to_contain_text("prompt_bundle_hash")  # the label, not the genome key
    expect(error).to_contain_text("Prompt bundle hash")
    shot("validation-error")
    modal.locator("#id_prompt_bundle_hash").fill(VALID_PROMPT)
    modal.get_by_role("button", name="Create version").click()
    created = page.get_by_test_id("created-hash")
    expect(created).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    shot("created")
    genome_hash = created.inner_text()
    page.get_by_role("button", name="Open version").click()
    expect(page.get_by_test_id("version-drawer")).to_contain_text(f"{name} @0.1.0")
    expect(page.get_by_test_id("genome-hash")).to_have_text(genome_hash)
    expect(page.get_by_test_id("integrity-badge")).to_have_text(re.compile("VERIFIED"))


def test_a_valid_transition(sign_in, shot):
    page = sign_in("acme-operator")
    page.select_option("#f-state", "DRAFT")
    expect(page).to_have_url(re.compile(r"lifecycle_state=DRAFT"))
    row = version_rows(page).first
    short_id = row.locator(".mono").first.inner_text()
    row.click()
    drawer = page.get_by_test_id("version-drawer")
    button = drawer.get_by_test_id("transition-TESTING")
    expect(button).to_be_enabled()
    drawer.get_by_placeholder(re.compile("Reason")).fill("browser test")
    button.click()
    expect(page.locator(".toast").filter(has_text="from DRAFT to TESTING")).to_be_visible()
    expect(page.get_by_test_id("version-drawer").locator('[data-current="true"]')).to_contain_text("TESTING")
    expect(page.get_by_test_id("history")).to_contain_text("VERSION_TRANSITIONED")
    shot()
    # The list behind the drawer refreshed itself: the version left the DRAFT filter.
    page.keyboard.press("Escape")
    expect(page.locator("#directory-results")).not_to_contain_text(short_id)


def test_an_approval_approved_from_the_approval_center(sign_in, shot):
    page = sign_in("acme-approver")
    expect(page.get_by_test_id("pending-badge")).to_be_visible()
    page.get_by_role("link", name=re.compile("Approvals")).click()
    expect(page).to_have_url(re.compile("/approvals/"))
    wait_ready(page)
    card = page.get_by_test_id("approval-card").filter(has_text=APPROVAL_PARAMS_MARKER)
    expect(card).to_be_visible()
    expect(card.get_by_test_id("time-left")).to_contain_text("expires in")
    shot("pending")
    card.get_by_placeholder("Note (optional)").fill("approved by the browser test")
    card.get_by_test_id("approve").click()
    expect(page.locator(".toast").filter(has_text="Approved")).to_be_visible()
    expect(page.get_by_test_id("approval-card").filter(has_text=APPROVAL_PARAMS_MARKER)).to_have_count(0)
    shot("approved")
    page.get_by_role("link", name="History").click()
    expect(page.get_by_test_id("approval-history")).to_contain_text("approved by the browser test")


def test_tenant_switch_changes_what_is_shown(sign_in, shot):
    page = sign_in("ops")
    open_tab(page, "Templates")
    expect(page.locator("#tenant-switch")).to_have_value("acme")
    expect(page.locator('[data-testid="template-row"]').first).to_be_visible()
    acme_templates = page.locator('[data-testid="template-row"]').all_inner_texts()
    page.select_option("#tenant-switch", "globex")
    expect(page.locator(".toast").filter(has_text="Switched to")).to_be_visible()  # after the reload
    wait_ready(page)
    expect(page.locator("#tenant-switch")).to_have_value("globex")
    open_tab(page, "Templates")
    expect(page.locator('[data-testid="template-row"]').first).to_be_visible()
    globex_templates = page.locator('[data-testid="template-row"]').all_inner_texts()
    assert globex_templates and globex_templates != acme_templates
    shot()
