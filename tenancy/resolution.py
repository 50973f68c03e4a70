"""Resolving the active tenant and roles of a signed-in user; the one place tenant scoping starts."""

from __future__ import annotations

from tenancy.context import Actor
from tenancy.models import Membership, Tenant

SESSION_TENANT_KEY = "arm_tenant"
TENANT_HEADER = "HTTP_X_ARM_TENANT"


class TenantResolutionError(Exception):
    """The signed-in user has no usable tenant for this request (code says why)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def memberships_of(user) -> list[Membership]:
    return list(Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__slug"))


def request_memberships(request, user) -> list[Membership]:
    """``memberships_of(user)`` read once per request: resolving the tenant and the page's tenant switcher
    both need them."""
    cached = getattr(request, "_arm_memberships", None)
    if cached is None or cached[0] != user.pk:
        cached = request._arm_memberships = (user.pk, memberships_of(user))
    return cached[1]


def resolve_user_tenant(request, user, *, default_first: bool = False) -> tuple[Tenant, Actor]:
    """Pick the tenant for a session user: the X-ARM-Tenant header, else the UI's active tenant, else
    the only membership (the UI, ``default_first``, takes the first). Raises TenantResolutionError
    when none fits."""
    memberships = request_memberships(request, user)
    wanted = request.META.get(TENANT_HEADER) or getattr(request, "session", {}).get(SESSION_TENANT_KEY)
    chosen = None
    if wanted:
        chosen = next((m for m in memberships if m.tenant.slug == wanted), None)
        if chosen is None and request.META.get(TENANT_HEADER):
            raise TenantResolutionError("tenant_not_found", f"You are not a member of tenant '{wanted}'.")
    if chosen is None:
        if not memberships:
            raise TenantResolutionError("no_tenant", "You are not a member of any tenant.")
        if len(memberships) > 1 and not wanted and not default_first:
            raise TenantResolutionError(
                "tenant_required",
                "You belong to several tenants: send the X-ARM-Tenant header with a tenant slug.",
            )
        chosen = memberships[0]
    actor = Actor.for_user(user, chosen.roles)
    return chosen.tenant, actor
