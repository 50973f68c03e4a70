"""Approvals admin: requests are opened by evaluation only, so the admin reads them and offers approve /
deny / expire actions that call the same services as the API (roles, four eyes, 409 rules and expiry
hold). Reading writes nothing: an overdue PENDING request is shown as EXPIRED (``ApprovalRequest.as_of``)
until ``manage.py expire_approvals``, a decision or the "Expire overdue" action records its expiry."""

from django.contrib import admin, messages
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.services import approval_decide, approval_expire
from tenancy.admin_mixins import ReadOnlyAdmin, admin_actor, run_service


def _decide_action(approve: bool):
    verb = "approve" if approve else "deny"

    def action(modeladmin, request, queryset):
        done = 0
        for approval in queryset.select_related("tenant"):
            done += run_service(
                request,
                approval_decide,
                approval=approval,
                approve=approve,
                actor=admin_actor(request, approval.tenant),
            )
        if done:
            messages.success(request, f"{verb.capitalize()}d {done} request(s).")

    action.__name__ = verb
    return admin.action(description=f"{verb.capitalize()} selected requests")(action)


@admin.action(description="Expire selected overdue requests")
def expire_overdue(modeladmin, request, queryset):
    """The expiry service on each selected request; it expires only PENDING requests past their deadline."""
    now = timezone.now()
    expired = sum(approval_expire(approval=approval, now=now) for approval in queryset.select_related("tenant"))
    messages.success(request, f"Expired {expired} overdue request(s).")


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = ["requested_at", "tool", "risk", "status_now", "instance", "requester", "decided_by", "tenant"]
    list_filter = ["tenant", "status", "risk"]
    search_fields = ["tool", "requester", "decided_by"]
    list_select_related = ["instance", "tenant"]
    actions = [_decide_action(True), _decide_action(False), expire_overdue]

    @admin.display(description="status", ordering="status")
    def status_now(self, obj):
        return obj.as_of(timezone.now()).status
