"""Under the Content-Security-Policy (no inline script or style, nothing from another host) the main pages
work and the browser reports no violation: directory, drawer, approvals, policies, cost, API keys, the
Django admin and the Swagger UI."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_USERNAME, wait_ready

pytestmark = pytest.mark.browser

VIOLATION = re.compile(r"Content Security Policy|Refused to (execute|apply|load|connect|evaluate)", re.I)


@pytest.fixture
def console(page):
    """Every console message and page error, collected."""
    messages = []
    page.on("console", lambda msg: messages.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: messages.append(f"pageerror: {exc}"))
    return messages


def violations(messages):
    return [m for m in messages if VIOLATION.search(m) or m.startswith("pageerror")]


def test_every_response_carries_the_policy(page, arm_server):
    response = page.goto(f"{arm_server.url}/accounts/login/")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_operator_pages_have_no_csp_violation(sign_in, console, arm_server, shot):
    page = sign_in("acme-admin")
    # Directory and the version drawer (htmx swap, focus handling, Enter on a row).
    page.locator('[data-testid="version-row"]').first.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    page.locator('[data-testid="version-row"]').first.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog")).to_be_visible()
    for path, ready in [
        ("/approvals/", '[data-testid="approval-card"]'),
        ("/approvals/?tab=history", '[data-testid="approval-history"], .card'),
        ("/policies/", '[data-testid="policy-table"]'),
        ("/cost/", "main"),
        ("/incidents/", "main"),
        ("/audit/", "main"),
        ("/settings/api-keys/", '[data-testid="api-key-form"]'),
        ("/settings/members/", '[data-testid="member-table"]'),
        ("/settings/my-keys/", '[data-testid="my-key-form"]'),
        ("/settings/notifications/", '[data-testid="endpoint-table"]'),
    ]:
        page.goto(f"{arm_server.url}{path}")
        wait_ready(page)
        expect(page.locator(ready).first).to_be_visible()
    # A clickable policy row (data-href, was an inline onclick) opens the editor.
    page.goto(f"{arm_server.url}/policies/")
    wait_ready(page)
    page.locator('[data-testid="policy-table"] tbody tr td').nth(1).click()
    expect(page).to_have_url(re.compile(r"/policies/[0-9a-f-]+/"))
    # The approvals history status filter submits on change (was an inline onchange).
    page.goto(f"{arm_server.url}/approvals/?tab=history")
    wait_ready(page)
    page.select_option("#h-status", "APPROVED")
    expect(page).to_have_url(re.compile(r"status=APPROVED"))
    shot()
    assert not violations(console), console


def test_api_key_revoke_asks_first(sign_in, console, arm_server):
    page = sign_in("acme-admin")
    page.goto(f"{arm_server.url}/settings/api-keys/")
    wait_ready(page)
    page.fill("#id_name", "csp-test key")
    page.locator("input[name=roles][value=viewer]").check()
    page.get_by_role("button", name=re.compile("Create")).click()
    expect(page.get_by_test_id("new-secret")).to_be_visible()
    row = page.locator('[data-testid="api-key-table"] tr', has_text="csp-test key")
    questions = []

    def dismiss(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    row.get_by_role("button", name="Revoke").click()
    expect(row.get_by_role("button", name="Revoke")).to_be_visible()  # dismissed: still there
    assert questions and "Revoke csp-test key?" in questions[0]
    assert not violations(console), console


def test_admin_and_api_docs_have_no_csp_violation(page, console, arm_server, shot):
    page.goto(f"{arm_server.url}/admin/")
    page.fill("#id_username", ADMIN_USERNAME)
    page.fill("#id_password", arm_server.passwords[ADMIN_USERNAME])
    page.click("input[type=submit], button[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    for path in ["/admin/arm/tenant/", "/admin/registry/agentversion/", "/admin/auth/user/add/"]:
        page.goto(f"{arm_server.url}{path}")
        page.wait_for_load_state("load")
        expect(page.locator("#content")).to_be_visible()
    page.goto(f"{arm_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("ARM API")
    expect(page.locator(".opblock").first).to_be_visible()
    shot("api-docs")
    assert not violations(console), console
