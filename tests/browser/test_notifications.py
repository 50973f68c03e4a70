"""Notifications in the browser. A tenant admin creates a webhook endpoint on the Notifications page (a
refused URL first, shown next to its field), copies its signing secret from the one place it is shown,
sends it a test event and follows it in the delivery log. An approver opens the link of the email an
approval request sent them (the demo mails acme's approvers; Django's locmem backend in the command that
drains the outbox) and lands on the request. Screenshots go to test-artifacts/screenshots/."""

import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import APPROVAL_PARAMS_MARKER, wait_ready

pytestmark = pytest.mark.browser

DRAIN = """
from notifications.delivery import drain
for _ in range(20):
    if not drain():
        break
"""

# An approval request opened the way a runtime's evaluation opens one (on the instance the suite's first
# request is on), then the outbox drained with Django's locmem mail backend: the emails it sent, as JSON.
REQUEST_AND_MAIL = (
    """
import json
from django.conf import settings
from django.core import mail
from django.contrib.auth import get_user_model
from approvals.models import ApprovalRequest
from policies.services import policy_evaluate
from tenancy.context import Actor

settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
mail.outbox = []
first = ApprovalRequest.objects.select_related("instance", "tenant").get(params__ticket="MARKER")
operator = Actor.for_user(get_user_model().objects.get(username="acme-operator"), ["operator"])
result = policy_evaluate(
    tenant=first.tenant, instance_id=first.instance_id, tool=first.tool, params={"ticket": "BROWSER-MAIL"},
    actor=operator,
)
assert result.decision.decision == "NEEDS_APPROVAL", result.as_response()
""".replace("MARKER", APPROVAL_PARAMS_MARKER)
    + DRAIN
    + """
print(json.dumps({
    "approval": str(result.approval_id),
    "mails": [{"to": m.to, "subject": m.subject, "body": m.body} for m in mail.outbox],
}))
"""
)


def test_an_admin_creates_a_webhook_copies_its_secret_once_and_sends_a_test_event(sign_in, shot, arm_server):
    page = sign_in("acme-admin")
    page.get_by_role("link", name="Notifications").click()
    wait_ready(page)
    expect(page.get_by_test_id("endpoint-row").filter(has_text="Approvers by email")).to_contain_text("email")

    page.get_by_test_id("new-endpoint").click()
    modal = page.get_by_test_id("modal")
    expect(modal).to_be_visible()
    modal.locator("#id_name").fill("browser-ci-hook")
    expect(modal.get_by_test_id("endpoint-role-field")).to_be_hidden()  # a webhook (the default) has a URL
    modal.locator("#id_kind").select_option("email")  # an email endpoint has a role instead
    expect(modal.get_by_test_id("endpoint-url-field")).to_be_hidden()
    expect(modal.locator("#id_email_role")).to_have_value("approver")
    modal.locator("#id_kind").select_option("webhook")
    expect(modal.get_by_test_id("endpoint-url-field")).to_be_visible()
    modal.locator("#id_url").fill("https://127.0.0.1:9/hook")  # loopback: refused
    modal.locator('input[name="event_types"][value="approval.requested"]').check()
    modal.get_by_test_id("endpoint-submit").click()
    expect(modal.locator('[data-field-error="url"]')).to_be_visible()
    expect(modal.locator("#id_name")).to_have_value("browser-ci-hook")  # nothing typed is lost
    expect(modal.locator('input[name="event_types"][value="approval.requested"]')).to_be_checked()
    modal.locator("#id_url").fill("https://hooks.example.com/arm")
    modal.get_by_test_id("endpoint-submit").click()

    secret_box = page.get_by_test_id("endpoint-secret")
    expect(secret_box).to_be_visible()
    secret = page.get_by_test_id("endpoint-secret-value").input_value()
    assert secret.startswith("whsec_")
    shot("secret")
    secret_box.get_by_role("button", name="I stored it").click()
    expect(page.get_by_test_id("modal")).to_have_count(0)
    row = page.get_by_test_id("endpoint-row").filter(has_text="browser-ci-hook")
    expect(row).to_contain_text("approval.requested")  # the list refreshed behind the modal
    page.reload()
    wait_ready(page)
    assert secret not in page.content()  # shown once
    shot("list")

    row = page.get_by_test_id("endpoint-row").filter(has_text="browser-ci-hook")
    row.get_by_test_id("endpoint-log").click()
    wait_ready(page)
    expect(page.get_by_test_id("empty-state")).to_contain_text("Send a test event")
    page.get_by_test_id("endpoint-test").first.click()
    wait_ready(page)
    expect(page.locator(".toast").filter(has_text="Test event queued")).to_be_visible()
    delivery = page.get_by_test_id("delivery-row")
    expect(delivery).to_have_count(1)
    expect(delivery.get_by_test_id("delivery-event")).to_have_text("arm.test")

    arm_server.manage("shell", "-c", DRAIN)  # what the worker does (the browser suite's server runs none)
    page.reload()
    wait_ready(page)
    status = page.get_by_test_id("delivery-status")
    expect(status.locator("[data-status]")).not_to_have_attribute("data-status", "pending")
    assert secret not in page.content()
    shot()

    page.get_by_test_id("endpoint-edit").click()  # pause it: the header says so without a reload
    modal = page.get_by_test_id("modal")
    modal.locator("#id_active").uncheck()
    modal.get_by_test_id("endpoint-submit").click()
    expect(page.get_by_test_id("modal")).to_have_count(0)
    expect(page.locator("#endpoint-header")).to_contain_text("paused")
    expect(page.get_by_test_id("delivery-row")).to_have_count(1)


def test_an_approver_opens_the_request_from_its_email(sign_in, shot, arm_server):
    out = arm_server.manage("shell", "-c", REQUEST_AND_MAIL, ARM_PUBLIC_URL=arm_server.url)
    sent = json.loads(out.strip().splitlines()[-1])
    approval = sent["approval"]
    mails = [m for m in sent["mails"] if f"?approval={approval}" in m["body"]]
    assert [m["to"] for m in mails] == [["acme-approver@example.com"]], sent["mails"]
    (mail,) = mails
    assert "] Approval needed: " in mail["subject"], mail["subject"]
    link = re.search(r"(http\S+/approvals/\?approval=" + approval + ")", mail["body"]).group(1)
    assert link.startswith(arm_server.url)

    page = sign_in("acme-approver")
    page.goto(link)
    wait_ready(page)
    card = page.locator(f'[aria-labelledby="appr-{approval}"]')
    expect(card).to_be_visible()
    expect(card).to_have_attribute("data-focused", "")  # the link marks its request among the pending
    expect(card).to_be_in_viewport()
    expect(card.get_by_test_id("approve")).to_be_visible()  # the approver can decide it from here
    shot()
