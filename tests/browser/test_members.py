"""The Members page in headless Chromium: a tenant admin adds a person with roles (checkboxes), sees them
listed, changes their roles, and the person sets a password through the one-time link. Screenshots go to
test-artifacts/screenshots/."""

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import wait_ready

pytestmark = pytest.mark.browser


def row(page, username):
    return page.locator(f'[data-testid="member-row"][data-username="{username}"]')


def test_admin_adds_a_person_changes_roles_and_they_set_a_password(page, sign_in, arm_server, shot):
    username = f"nina-{uuid.uuid4().hex[:6]}"
    sign_in("acme-admin")
    page.get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members")).to_be_visible()
    wait_ready(page)
    expect(row(page, "acme-operator")).to_be_visible()
    shot("list")

    page.get_by_test_id("add-person").click()
    form = page.get_by_test_id("member-form")
    expect(form).to_be_visible()
    form.locator("input[name=username]").fill(username)
    form.get_by_label("Email").fill(f"{username}@example.com")
    form.get_by_label("Operator").check()
    form.get_by_label("Approver").check()
    expect(form.get_by_label("Generate a one-time set-password link")).to_be_checked()
    shot("add-form")
    page.get_by_test_id("member-submit").click()
    link_box = page.get_by_test_id("password-link")
    expect(link_box).to_be_visible()
    link = page.locator("#password-link-value").input_value()
    assert re.search(r"/accounts/set-password/[^/]+/[^/]+/$", link), link
    shot("link")

    page.get_by_test_id("member-done").click()
    wait_ready(page)
    expect(row(page, username).get_by_test_id("member-roles")).to_have_text(re.compile(r"approver\s*operator"))

    row(page, username).get_by_test_id("edit-member").click()
    roles_form = page.get_by_test_id("member-roles-form")
    expect(roles_form).to_be_visible()
    roles_form.locator("input[value=approver]").uncheck()
    roles_form.locator("input[value=compliance]").check()
    shot("edit")
    page.get_by_test_id("save-roles").click()
    wait_ready(page)
    expect(row(page, username).get_by_test_id("member-roles")).to_have_text(re.compile(r"compliance\s*operator"))
    shot("roles-changed")

    # the new person follows the link (signed out) and sets a password
    page.context.clear_cookies()
    page.goto(link)
    expect(page.get_by_test_id("set-password-form")).to_be_visible()
    expect(page.get_by_test_id("set-password-user")).to_have_text(username)
    page.fill("#id_new_password1", "Nina-browser-pass-42")
    page.fill("#id_new_password2", "Nina-browser-pass-42")
    shot("set-password")
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_test_id("login-message")).to_contain_text("Password set")
    page.fill("#id_username", username)
    page.fill("#id_password", "Nina-browser-pass-42")
    page.click("button[type=submit]")
    expect(page.get_by_test_id("current-user")).to_have_text(username)
    shot("signed-in")
    # the link is spent
    page.goto(link)
    expect(page.get_by_test_id("set-password-invalid")).to_be_visible()


def test_last_admin_cannot_drop_admin(sign_in, shot):
    page = sign_in("acme-admin")
    page.goto(page.url.split("/directory")[0] + "/settings/members/")
    wait_ready(page)
    row(page, "acme-admin").get_by_test_id("edit-member").click()
    roles_form = page.get_by_test_id("member-roles-form")
    expect(roles_form).to_be_visible()
    roles_form.locator("input[value=admin]").uncheck()
    roles_form.locator("input[value=viewer]").check()
    page.get_by_test_id("save-roles").click()
    expect(page.locator(".toast[data-level=error]")).to_contain_text("last admin")
    shot()
