"""Template context shared by every UI page: active tenant, the user's tenants and roles."""

from tenancy.resolution import request_memberships


def arm(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    actor = getattr(request, "arm_actor", None)
    return {
        "arm_tenant": getattr(request, "arm_tenant", None),
        "arm_actor": actor,
        "arm_roles": sorted(actor.roles) if actor else [],
        "arm_memberships": request_memberships(request, user),
    }
