"""Emails and Slack bodies, from events the outbox really writes: an approval request mailed to the
tenant's approvers (never its requester, never a deactivated account) with the tool, estimate, data
scopes, instance, expiry and a deep link; delivered by ``delivery.drain`` through Django's locmem backend;
Slack Block Kit with the same facts, escaped."""

from datetime import UTC
from decimal import Decimal

import pytest
from django.test import override_settings

from approvals.services import approval_open
from notifications import email, slack
from notifications.choices import DeliveryStatus, EndpointKind
from notifications.delivery import drain
from notifications.models import Delivery, Event
from tenancy.context import Actor
from tests.factories import MembershipFactory, UserFactory
from tests.notifications.factories import EndpointFactory
from tests.policies.factories import make_instance

pytestmark = pytest.mark.django_db

PUBLIC = "https://arm.example.com"


def _member(tenant, username, roles, **user):
    person = UserFactory(username=username, **{"email": f"{username}@acme.example", **user})
    MembershipFactory(tenant=tenant, user=person, roles=roles)
    return person


def _request_approval(tenant, requester, *, tool="payments.refund"):
    instance = make_instance(tenant)
    approval, _ = approval_open(
        tenant=tenant,
        instance=instance,
        tool=tool,
        params={"amount": 12},
        params_hash="a" * 64,
        risk="high",
        reasons=[{"code": "needs_approval", "message": "refunds need a person"}],
        timeout_seconds=3600,
        estimated_cost_usd=Decimal("0.25"),
        data_scopes=["payments:write"],
        actor=requester,
    )
    return approval, instance


@pytest.fixture
def people(tenant):
    return {
        "alice": _member(tenant, "alice", ["approver"]),  # she asks, so she is not mailed
        "bob": _member(tenant, "bob", ["approver", "viewer"]),
        "carol": _member(tenant, "carol", ["approver"], is_active=False),  # deactivated
        "dave": _member(tenant, "dave", ["admin"]),  # admin, not an approver by role
        "erin": _member(tenant, "erin", ["approver"], email=""),  # no address
    }


@override_settings(ARM_PUBLIC_URL=PUBLIC)
def test_an_approval_request_is_mailed_to_the_other_approvers_with_a_deep_link(tenant, people, mailoutbox):
    endpoint = EndpointFactory(tenant=tenant, kind=EndpointKind.EMAIL, url="", email_role="approver")
    approval, instance = _request_approval(tenant, Actor.for_user(people["alice"], ["approver"]))
    assert drain() >= 1
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert delivery.status == DeliveryStatus.SUCCEEDED, delivery.last_error
    (mail,) = mailoutbox
    assert mail.to == ["bob@acme.example"]
    assert mail.subject == f"[ARM {tenant.name}] Approval needed: payments.refund on {instance.name}"
    link = f"{PUBLIC}/approvals/?approval={approval.pk}"
    html = mail.alternatives[0][0]
    for text in (mail.body, html):
        for fact in ("payments.refund", instance.name, "$0.25", "payments:write", "refunds need a person", link):
            assert fact in text, (fact, text)
    assert f"Expires: {approval.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" in mail.body
    assert mail.extra_headers["X-ARM-Event-Id"] == delivery.event.webhook_id


def test_a_key_acting_for_the_requester_does_not_get_them_mailed(tenant, people, mailoutbox):
    from tenancy.services import api_key_create

    alice = Actor.for_user(people["alice"], ["approver"])
    key, _ = api_key_create(tenant=tenant, name="alice's script", roles=["approver"], actor=alice)
    EndpointFactory(tenant=tenant, kind=EndpointKind.EMAIL, url="", email_role="approver")
    _request_approval(tenant, Actor.for_key(key))
    drain()
    assert [m.to for m in mailoutbox] == [["bob@acme.example"]]


def test_nobody_to_mail_is_an_error_in_the_delivery_log(tenant, people, mailoutbox):
    endpoint = EndpointFactory(tenant=tenant, kind=EndpointKind.EMAIL, url="", email_role="compliance")
    _request_approval(tenant, Actor.for_user(people["alice"], ["approver"]))
    drain()
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert delivery.status == DeliveryStatus.FAILED and "compliance" in delivery.last_error
    assert mailoutbox == []
    with pytest.raises(email.NoRecipients):
        email.send(delivery.event, endpoint)


def test_another_tenants_approvers_are_never_mailed(tenant, other_tenant, people, mailoutbox):
    _member(other_tenant, "mallory", ["approver"])
    EndpointFactory(tenant=tenant, kind=EndpointKind.EMAIL, url="", email_role="approver")
    _request_approval(tenant, Actor.for_user(people["alice"], ["approver"]))
    drain()
    assert [m.to for m in mailoutbox] == [["bob@acme.example"]]


@override_settings(ARM_PUBLIC_URL=PUBLIC)
def test_a_slack_body_has_the_facts_a_button_and_escapes_what_it_quotes(tenant, people):
    EndpointFactory(tenant=tenant, event_types=["approval.requested"])
    approval, instance = _request_approval(tenant, Actor.for_user(people["alice"], ["approver"]), tool="<!channel>")
    event = Event.objects.get(type="approval.requested")
    body = slack.render(event)
    link = f"{PUBLIC}/approvals/?approval={approval.pk}"
    assert body["text"].startswith("Approval needed: &lt;!channel&gt; on ") and link in body["text"]
    assert "<!channel>" not in str(body)  # a tool name never pings a channel
    header, facts, actions, context = body["blocks"]
    assert header["text"]["text"] == f"*Approval needed: &lt;!channel&gt; on {instance.name}*"
    fields = [f["text"] for f in facts["fields"]]
    assert "*Estimate, at most*\n$0.25" in fields and "*Data scopes, at most*\npayments:write" in fields
    assert len(fields) <= 10
    (button,) = actions["elements"]
    assert button["url"] == link and button["style"] == "primary"
    assert event.webhook_id in context["elements"][0]["text"]


def test_every_catalogue_example_renders(tenant):
    """Each documented type (its catalogue example) gives a headline, and a link where it has one."""
    from notifications import catalogue

    endpoint = EndpointFactory(tenant=tenant, kind=EndpointKind.EMAIL, url="")
    for spec in catalogue.CATALOGUE.values():
        event = Event(tenant=tenant, type=spec.type, payload={"type": spec.type, "timestamp": "", "data": spec.example})
        body = slack.render(event)
        subject, text, html = email.build(event, endpoint, tenant_name="Acme")
        assert body["text"] and subject.startswith("[ARM Acme] ") and len(subject) > len("[ARM Acme] ") + 5
        if spec.example.get("url"):
            assert spec.example["url"] in text and spec.example["url"] in html, spec.type
