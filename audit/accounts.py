"""The records of what happens to people's accounts (``tenancy.signals``): tenancy sits below audit, so
it sends a signal and this writes the record, inside the sender's transaction. The target is the User."""

from __future__ import annotations

from audit.choices import EventType
from audit.models import ChangeRecord
from audit.services import record_change
from tenancy.models import Membership
from tenancy.signals import account_event, latest_password_link


def record_account_event(sender, *, tenant, event_type, user, payload, actor, **kwargs) -> None:
    record_change(tenant=tenant, event_type=event_type, target=user, target_type="User", payload=payload, actor=actor)


def latest_link(sender, *, user, **kwargs) -> str:
    """The id of the latest set-password link made for ``user``, '' when none was: the ``link_id`` of
    its PASSWORD_LINK_CREATED records, which ``password_link_create`` writes in every tenant of the person
    (so it is still found after they leave one of them)."""
    latest = (
        ChangeRecord.objects.filter(
            tenant_id__in=Membership.objects.filter(user=user).values("tenant_id"),
            target_type="User",
            target_id=str(user.pk),
            event_type=EventType.PASSWORD_LINK_CREATED,
        )
        .order_by("-created_at", "-seq")
        .values_list("id", "payload")
        .first()
    )
    if latest is None:
        return ""
    record_id, payload = latest
    return str(payload.get("link_id") or record_id)


def connect() -> None:
    """``AuditConfig.ready``."""
    account_event.connect(record_account_event, dispatch_uid="audit.accounts.record_account_event")
    latest_password_link.connect(latest_link, dispatch_uid="audit.accounts.latest_link")
