"""Approvals admin: requests are opened by evaluation only, so the admin reads them and offers approve /
deny actions that call the same service as the API (roles, four eyes, 409 rules and expiry hold)."""

from django.contrib import admin, messages
from django.utils import timezone

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from approvals.services import approval_decide, approval_expire
from arm.admin_mixins import ReadOnlyAdmin, admin_actor, run_service


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


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = ["requested_at", "tool", "risk", "status", "instance", "requester", "decided_by", "tenant"]
    list_filter = ["tenant", "status", "risk"]
    search_fields = ["tool", "requester", "decided_by"]
    list_select_related = ["instance", "tenant"]
    actions = [_decide_action(True), _decide_action(False)]

    def changelist_view(self, request, extra_context=None):
        # Reads expire overdue requests (auto-deny), here as in the API, in the admin's tenants only.
        now = timezone.now()
        for approval in self.get_queryset(request).filter(status=ApprovalStatus.PENDING, expires_at__lte=now):
            approval_expire(approval=approval, now=now)
        return super().changelist_view(request, extra_context)

    def get_object(self, request, object_id, from_field=None):
        approval = super().get_object(request, object_id, from_field)
        if approval is not None:
            approval_expire(approval=approval)
        return approval
