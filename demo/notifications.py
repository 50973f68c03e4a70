"""The demo's notification endpoint: acme's approvers are emailed every approval request (and expiry),
so ``make run`` shows approvals notifying (the worker prints each email on its console: without
EMAIL_HOST, Django's console mail backend). Seeded after the policy history, so the seeded approvals are not mailed;
the demo runtime's new requests are.

Only what works in a fresh checkout: no webhook to an address nobody listens on."""

from arm.demo_ids import demo_id
from notifications.models import Endpoint
from notifications.services import endpoint_create

APPROVER_EMAILS = "Approvers by email"


def seed_notification_demo(tenant, actor) -> int:
    """The email endpoint of ``tenant`` (with its well-known id); 1 when made, 0 when already there."""
    if Endpoint.objects.filter(tenant=tenant, name=APPROVER_EMAILS).exists():
        return 0
    endpoint_create(
        tenant=tenant,
        actor=actor,
        pk=demo_id("endpoint", APPROVER_EMAILS, tenant.slug),
        name=APPROVER_EMAILS,
        kind="email",
        email_role="approver",
        event_types=["approval.requested", "approval.expired"],
    )
    return 1
