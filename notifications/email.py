"""Email notifications through Django's mail backends (``send``): one message per recipient, plain text
and HTML, with the event's facts and a deep link (``ARM_PUBLIC_URL`` + the page to act on).

Recipients are the tenant's members holding the endpoint's ``email_role`` explicitly (approvers by
default; an admin's implied roles do not count, so an admin is mailed only as a member of the role asked
for), whose account is active and has an address. For an approval event the person who requested it is
left out, through any key of theirs (four eyes: they may not decide it; ``principal_of``). Nobody left
raises ``NoRecipients``, so the delivery log says so and retries (someone may add an address meanwhile)."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string

from arm.filters import json_array_contains
from notifications.messages import describe_event
from tenancy.models import Membership
from tenancy.permissions import principal_of


class NoRecipients(Exception):
    """No active member of the endpoint's role has an email address (or only the requester does)."""


def recipients(endpoint, event) -> list[str]:
    """The addresses ``event`` is mailed to for ``endpoint``, sorted, each once."""
    members = json_array_contains(
        Membership.objects.filter(tenant_id=endpoint.tenant_id, user__is_active=True), "roles", [endpoint.email_role]
    ).select_related("user")
    excluded = set()
    if event.type.startswith("approval."):
        requester = ((event.payload.get("data") or {}).get("approval") or {}).get("requester") or ""
        if requester:
            excluded = {requester, principal_of(requester)}
    return sorted({m.user.email for m in members if m.user.email and f"user:{m.user.get_username()}" not in excluded})


def build(event, endpoint, *, tenant_name: str = "") -> tuple[str, str, str]:
    """(subject, text, html) of the email for ``event``."""
    message = describe_event(event, tenant_name=tenant_name)
    prefix = f"[ARM {tenant_name}]" if tenant_name else "[ARM]"
    subject = f"{prefix} {message.headline}".replace("\n", " ")[:200]
    context = {"message": message, "event": event, "endpoint": endpoint, "tenant_name": tenant_name}
    text = render_to_string("notifications/email/event.txt", context)
    html = render_to_string("notifications/email/event.html", context)
    return subject, text, html


def send(event, endpoint) -> int:
    """Mail ``event`` to the members ``endpoint`` names; the number of messages sent. Raises
    ``NoRecipients`` when nobody is left, and whatever the mail backend raises when sending fails."""
    to = recipients(endpoint, event)
    if not to:
        raise NoRecipients(
            f"No active member holding the role {endpoint.email_role} has an email address"
            + (" (the requester is not mailed their own request)." if event.type.startswith("approval.") else ".")
        )
    tenant_name = endpoint.tenant.name
    subject, text, html = build(event, endpoint, tenant_name=tenant_name)
    messages = []
    for address in to:
        mail = EmailMultiAlternatives(
            subject,
            text,
            settings.DEFAULT_FROM_EMAIL,
            [address],
            # Mail clients thread on it and a receiver can deduplicate on it, as webhooks do on webhook-id.
            headers={"X-ARM-Event-Id": event.webhook_id, "X-ARM-Event-Type": event.type},
        )
        mail.attach_alternative(html, "text/html")
        messages.append(mail)
    with get_connection(fail_silently=False) as connection:
        return connection.send_messages(messages) or 0
