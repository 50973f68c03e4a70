"""Approval center: pending requests (refreshing themselves), context for a decision, one-click
approve / deny with an optional note, and the history of decided requests."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from approvals.choices import ApprovalStatus
from approvals.filtersets import ApprovalFilterSet
from approvals.models import ApprovalRequest
from approvals.selectors import approvals_visible_to
from approvals.services import DECIDER_ROLES, approvals_expire_due
from approvals.services import approval_decide as decide_service
from arm.errors import Conflict, DomainError
from arm.selectors import prime_actors
from arm.ui import can, error_message, htmx_event, non_empty, paginate, scoped_get, tenant_page

RELATED = ("instance__version__template", "instance__environment", "instance__policy")


def _pending(request):
    return list(
        approvals_visible_to(request.arm_actor, request.arm_tenant)
        .filter(status=ApprovalStatus.PENDING)
        .select_related(*RELATED)
        .order_by("expires_at")[:100]
    )


def _pending_context(request) -> dict:
    approvals_expire_due(tenant=request.arm_tenant)
    now = timezone.now()
    rows = _pending(request)
    for row in rows:
        row.seconds_left = max(0, int((row.expires_at - now).total_seconds()))
        row.own_request = row.requester == request.arm_actor.ref
    prime_actors(request, (row.requester for row in rows))
    return {"pending": rows, "can_decide": can(request, *DECIDER_ROLES), "now": now}


@tenant_page()
def approval_center(request):
    tab = request.GET.get("tab", "pending")
    context = {"tab": tab, **_pending_context(request)}
    if tab == "history":
        base = approvals_visible_to(request.arm_actor, request.arm_tenant).exclude(status=ApprovalStatus.PENDING)
        filterset = ApprovalFilterSet(non_empty(request.GET), queryset=base.select_related(*RELATED), request=request)
        qs = filterset.qs if filterset.is_valid() else base.none()
        page = paginate(request, qs.order_by("-decided_at", "-requested_at"))
        rows = list(page.object_list)
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
    approval = scoped_get(request, ApprovalRequest.objects.select_related("tenant", "instance"), pk)
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
