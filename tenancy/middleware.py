"""Binds the request's actor and tenant (``tenancy.context``) for UI and admin requests."""

from tenancy.context import Actor, reset_context, set_context
from tenancy.resolution import TenantResolutionError, resolve_user_tenant


class RequestContextMiddleware:
    """Binds a signed-in user's actor (and active tenant, when one resolves) for the request.

    API requests re-bind in their authentication class (API keys, X-ARM-Tenant); the token reset here
    ends whatever was bound during the request.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tenant, actor = None, None
        user = getattr(request, "user", None)
        # The path first: API requests authenticate in DRF, and must not load the session here.
        if not request.path.startswith("/api/") and user is not None and user.is_authenticated:
            try:
                tenant, actor = resolve_user_tenant(request, user, default_first=True)
            except TenantResolutionError:
                actor = Actor.for_user(user, (), is_superuser=user.is_superuser)
            if user.is_superuser:
                actor = Actor.for_user(user, actor.roles, is_superuser=True)
        request.arm_tenant = tenant
        request.arm_actor = actor
        # Always set (possibly to nothing) and always reset, so whatever the API authentication binds
        # during this request never outlives it on this thread.
        token = set_context(actor, tenant)
        try:
            return self.get_response(request)
        finally:
            reset_context(token)
