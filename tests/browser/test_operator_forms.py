"""Operators who use only the UI: recording an evaluation from the version drawer (and taking the
TESTING → CANDIDATE step it unblocks), and registering providers and environments on the Federation
page, including a tier change the deployment gate refuses. Screenshots go to test-artifacts/screenshots/."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import wait_ready, wait_settled

pytestmark = pytest.mark.browser


def test_record_an_evaluation_from_the_drawer_enables_testing_to_candidate(sign_in, shot, arm_server):
    page = sign_in("acme-operator")
    page.select_option("#f-state", "TESTING")
    expect(page).to_have_url(re.compile(r"lifecycle_state=TESTING"))
    page.select_option("#f-eval", "PENDING")
    expect(page).to_have_url(re.compile(r"eval_status=PENDING"))
    page.locator('[data-testid="version-row"]').first.click()
    drawer = page.get_by_test_id("version-drawer")
    candidate = drawer.get_by_test_id("transition-CANDIDATE")
    expect(candidate).to_be_disabled()
    expect(drawer).to_contain_text("evaluation status is PENDING, PASS is required")
    # The harness hint carries the full endpoint, ready to copy.
    drawer.get_by_test_id("harness").locator("summary").click()
    expect(drawer.get_by_test_id("harness-url")).to_have_value(
        re.compile(re.escape(arm_server.url) + r"/api/v1/versions/[0-9a-f-]{36}/evaluations/$")
    )
    expect(drawer.get_by_test_id("harness-curl")).to_contain_text("Authorization: Bearer $ARM_API_KEY")

    drawer.get_by_test_id("record-evaluation").click()
    modal = page.get_by_test_id("modal")
    expect(modal).to_be_visible()
    modal.locator("#id_suite").fill("regression")
    modal.get_by_label("PASS", exact=True).check()
    modal.locator("#id_score").fill("0.93")
    modal.locator("#id_run_url").fill("ci.example.com/runs/42")  # no scheme: refused, nothing lost
    modal.locator("#id_notes").fill("42/42 checks green")
    modal.get_by_test_id("record-evaluation-submit").click()
    expect(modal.locator('[data-field-error="run_url"]')).to_contain_text("http(s) URL")
    expect(modal.locator("#id_notes")).to_have_value("42/42 checks green")
    expect(modal.locator("#id_score")).to_have_value("0.93")
    shot("validation-error")
    modal.locator("#id_run_url").fill("https://ci.example.com/runs/42")
    modal.get_by_test_id("record-evaluation-submit").click()

    expect(page.get_by_test_id("modal")).to_have_count(0)
    expect(page.locator(".toast").filter(has_text="regression PASS recorded")).to_be_visible()
    drawer = page.get_by_test_id("version-drawer")
    expect(drawer.get_by_test_id("evaluations")).to_contain_text("regression")
    expect(drawer.get_by_test_id("evaluations")).to_contain_text("42/42 checks green")
    expect(drawer.locator("header [data-status=PASS]")).to_be_visible()
    expect(drawer.get_by_test_id("transition-CANDIDATE")).to_be_enabled()
    shot()
    harness = drawer.get_by_test_id("harness")
    harness.locator("summary").click()
    harness.scroll_into_view_if_needed()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=arm_server.url)
    harness.get_by_test_id("copy-curl").click()
    expect(page.locator(".toast").filter(has_text="Copied to the clipboard")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith(f'curl -s -X POST "{arm_server.url}/api/v1/versions/') and '"suite"' in copied
    shot("evaluations")
    drawer.get_by_test_id("transition-CANDIDATE").click()
    expect(page.locator(".toast").filter(has_text="from TESTING to CANDIDATE")).to_be_visible()
    expect(page.get_by_test_id("version-drawer").locator('[data-current="true"]')).to_contain_text("CANDIDATE")


def test_viewer_sees_no_record_button(sign_in):
    page = sign_in("acme-viewer")
    page.locator('[data-testid="version-row"]').first.click()
    drawer = page.get_by_test_id("version-drawer")
    expect(drawer).to_be_visible()
    expect(drawer.get_by_test_id("record-evaluation")).to_have_count(0)
    expect(drawer.get_by_test_id("record-evaluation-hidden")).to_contain_text("needs the operator role")


def open_federation(page, arm_server):
    page.goto(f"{arm_server.url}/federation/")
    wait_ready(page)
    expect(page.get_by_role("heading", name="Federation")).to_be_visible()


def test_create_a_provider_and_an_environment_on_the_federation_page(sign_in, shot, arm_server):
    page = sign_in("acme-operator")
    open_federation(page, arm_server)
    suffix = uuid.uuid4().hex[:5]

    page.get_by_test_id("new-provider").click()
    modal = page.get_by_test_id("modal")
    modal.locator("#id_name").fill(f"edge-{suffix}")
    modal.locator("#id_type").select_option("federated")
    modal.locator("#id_health_endpoint").fill("https://edge.example.com/health")
    modal.locator("#id_description").fill("Edge runtime in Frankfurt")
    modal.get_by_role("button", name="Create provider").click()
    expect(modal.locator('[data-field-error="federation_config"]')).to_contain_text("federated provider needs")
    expect(modal.locator("#id_description")).to_have_value("Edge runtime in Frankfurt")
    shot("provider-error")
    modal.locator("#id_federation_config").fill('{"endpoint": "https://edge.example.com/arm", "trust": "mtls"}')
    modal.get_by_role("button", name="Create provider").click()
    expect(page.get_by_test_id("modal")).to_have_count(0)
    expect(page.locator(".toast").filter(has_text=f"Provider edge-{suffix} (federated) created")).to_be_visible()
    card = page.get_by_test_id("provider-card").filter(has_text=f"edge-{suffix}")
    expect(card).to_contain_text("https://edge.example.com/health")
    expect(card).to_contain_text('"trust": "mtls"')

    page.get_by_test_id("new-environment").click()
    modal = page.get_by_test_id("modal")
    expect(modal.get_by_test_id("tier-gates")).to_contain_text("APPROVED versions only")
    modal.locator("#id_name").fill(f"qa-{suffix}")
    modal.locator("#id_tier").select_option("staging")
    modal.locator("#id_description").fill("QA lab")
    modal.locator("#id_config").fill('{"replicas": 2}')
    shot("environment-form")
    modal.get_by_role("button", name="Create environment").click()
    expect(page.get_by_test_id("modal")).to_have_count(0)
    row = page.get_by_test_id("environment-row").filter(has_text=f"qa-{suffix}")
    expect(row).to_contain_text("CANDIDATE or APPROVED")
    expect(row.locator("[data-status=staging]")).to_be_visible()
    shot()


def test_a_tier_change_refused_by_the_deployment_gate(sign_in, shot, arm_server):
    page = sign_in("acme-operator")
    open_federation(page, arm_server)
    row = page.get_by_test_id("environment-row").filter(has=page.get_by_text("dev", exact=True))
    row.get_by_test_id("edit-environment").click()
    modal = page.get_by_test_id("modal")
    expect(modal).to_contain_text("live instance")
    modal.locator("#id_tier").select_option("prod")
    modal.locator("#id_description").fill("Sandbox, promoted?")
    modal.get_by_role("button", name="Save changes").click()
    error = modal.locator('[data-field-error="tier"]')
    expect(error).to_contain_text("Cannot make environment dev prod")
    expect(modal.locator("#id_tier")).to_have_value("prod")
    expect(modal.locator("#id_description")).to_have_value("Sandbox, promoted?")
    shot()
    modal.get_by_role("button", name="Cancel").click()
    expect(page.get_by_test_id("modal")).to_have_count(0)
    expect(page.get_by_test_id("environment-row").filter(has=page.get_by_text("dev", exact=True))).to_contain_text(
        "any state but DEPRECATED or RETIRED"
    )


def test_new_instance_version_search_as_you_type_with_the_keyboard(sign_in, shot):
    """The version choice is a search box narrowing a bounded <select> (htmx, no other library): typed,
    tabbed to and chosen with the keyboard alone; the chosen version then offers its environments."""
    page = sign_in("acme-operator")
    page.get_by_test_id("new-instance").click()
    modal = page.get_by_role("dialog")
    search = modal.locator("#id_version_search")
    expect(search).to_be_visible()
    wait_settled(page)  # typed before htmx binds the search box, the keystrokes would request nothing
    search.focus()
    page.keyboard.type("sales")
    versions = modal.locator("#id_version option[value]:not([value=''])")
    expect(versions.first).to_contain_text("sales-assistant")
    for text in versions.all_inner_texts():
        assert "sales-assistant" in text, text
    page.keyboard.press("Tab")
    expect(modal.locator("#id_version")).to_be_focused()
    page.keyboard.press("ArrowDown")
    # Choosing a version re-renders the form with the environments it may deploy to; the search stays.
    expect(page.get_by_role("dialog").locator("#id_environment option")).not_to_have_count(1)
    expect(page.get_by_role("dialog").locator("#id_version_search")).to_have_value("sales")
    shot("new-instance-version-search")
