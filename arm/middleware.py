"""Request-scoped plumbing: body size limit (413) and the actor/tenant context for UI and admin."""

from django.conf import settings
from django.http import JsonResponse

from arm.context import Actor, reset_context, set_context
from arm.tenancy import TenantResolutionError, resolve_user_tenant


class BodySizeLimitMiddleware:
    """Refuse over-large bodies before anything reads them: 413 with a JSON error."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"code": "parse_error", "message": "Invalid Content-Length."}, status=400)
        if length > settings.ARM_MAX_BODY_BYTES:
            return JsonResponse(
                {
                    "code": "payload_too_large",
                    "message": f"Request body exceeds {settings.ARM_MAX_BODY_BYTES} bytes.",
                },
                status=413,
            )
        return self.get_response(request)


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
        if user is not None and user.is_authenticated and not request.path.startswith("/api/"):
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
