"""Approval center: pending requests (refreshing themselves), context for a decision, one-click
approve / deny with an optional note, and the history of decided requests.

The 5-second poll reads only: overdue requests drop out of the pending list and show as EXPIRED in the
history (``approvals.selectors``); the expiry is written by ``manage.py expire_approvals`` and on decide.
Whether the viewer may decide a request is the four-eyes rule itself (``tenancy.permissions``)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models.functions import Coalesce
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from approvals.choices import ApprovalStatus
from approvals.filtersets import ApprovalFilterSet
from approvals.models import ApprovalRequest
from approvals.selectors import approvals_decided, approvals_pending
from approvals.services import DECIDER_ROLES
from approvals.services import approval_decide as decide_service
from arm.errors import Conflict, DomainError
from arm.ui import error_message, htmx_event, non_empty, paginate
from tenancy.pages import can, tenant_page
from tenancy.permissions import is_same_principal, principals_of
from tenancy.scoping import scoped_get
from tenancy.selectors import prime_actors

# The instance's policy through the relation policies adds (policies.PolicyAttachment; approvals sit below).
RELATED = ("instance__version__template", "instance__environment", "instance__policy_attachment__policy")


PENDING_SHOWN = 100


def _pending_context(request) -> dict:
    now = timezone.now()
    # ?approval=<id>: the link a notification sends (notifications.catalogue.approval_link) marks that request.
    focus = request.GET.get("approval", "")
    rows = list(
        approvals_pending(request.arm_actor, request.arm_tenant, now)
        .select_related(*RELATED)
        .order_by("expires_at")[:PENDING_SHOWN]
    )
    principals = principals_of(row.requester for row in rows)
    for row in rows:
        row.seconds_left = max(0, int((row.expires_at - now).total_seconds()))
        row.own_request = is_same_principal(request.arm_actor, row.requester, principals)
        row.focused = str(row.pk) == focus
    prime_actors(request, (row.requester for row in rows))
    return {
        "pending": rows,
        "can_decide": can(request, *DECIDER_ROLES),
        "now": now,
        "focus": focus,
        "focus_gone": bool(focus) and not any(row.focused for row in rows),
    }


@tenant_page()
def approval_center(request):
    tab = request.GET.get("tab", "pending")
    context = {"tab": tab, "focus_scroll": True, **_pending_context(request)}  # the page load scrolls to it
    if tab == "history":
        now = context["now"]
        base = approvals_decided(request.arm_actor, request.arm_tenant, now)
        filterset = ApprovalFilterSet(non_empty(request.GET), queryset=base.select_related(*RELATED), request=request)
        qs = filterset.qs if filterset.is_valid() else base.none()
        # An overdue request reads as decided at its deadline (ApprovalRequest.as_of), so it sorts there.
        page = paginate(request, qs.order_by(Coalesce("decided_at", "expires_at").desc(), "-requested_at"))
        rows = [row.as_of(now) for row in page.object_list]
        prime_actors(request, (a.requester for a in rows), (a.decided_by for a in rows))
        context.update(page=page, rows=rows, filters=request.GET, statuses=ApprovalStatus.values[1:])
    return render(request, "approvals/center.html", context)


@tenant_page()
def pending_list(request):
    """The polled partial (every 5 s)."""
    return render(request, "approvals/_pending.html", {**_pending_context(request), "oob_counts": True})


@tenant_page(roles=DECIDER_ROLES)
@require_POST
def approval_decide(request, pk):
    approval = scoped_get(ApprovalRequest.objects.select_related("tenant", "instance"), request.arm_tenant, pk)
    approve = request.POST.get("decision") == "approve"
    note = request.POST.get("note", "")
    try:
        approval = decide_service(approval=approval, approve=approve, note=note, actor=request.arm_actor)
    except Conflict as exc:
        # Decided in another tab, by someone else, or expired meanwhile: tell, don't alarm.
        approval.refresh_from_db()
        who = f" by {approval.decided_by}" if approval.decided_by else ""
        messages.info(request, f"Already decided: {approval.tool} is {approval.status}{who}. ({exc.message})")
    except (DomainError, ValidationError) as exc:
        messages.error(request, error_message(exc))
    else:
        verb = "Approved" if approve else "Denied"
        messages.success(request, f"{verb} {approval.tool} on {approval.instance}.")
    if not request.htmx:
        return redirect("ui:approvals")
    response = render(
        request, "approvals/_pending.html", {**_pending_context(request), "oob_toasts": True, "oob_counts": True}
    )
    return htmx_event(response, "arm:approvals-changed")
