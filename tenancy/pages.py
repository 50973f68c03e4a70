"""The tenant side of every UI page: ``tenant_page`` (signed in, a tenant resolved by the middleware, one
of the roles the page asks for), ``can`` for role-dependent parts of a page, and the tenant switch. Pages
read through ``tenancy.scoping`` (``scoped_get``: another tenant's id is a 404)."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from arm.ui import forbidden
from tenancy.choices import READ_ROLES
from tenancy.resolution import SESSION_TENANT_KEY, memberships_of


def tenant_page(roles: Iterable[str] = READ_ROLES, *, methods: Iterable[str] | None = None):
    """Decorator for UI views: login, an active tenant, and one of ``roles`` (admin holds them all)."""
    roles = tuple(roles)

    def decorate(view):
        @login_required
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if methods is not None and request.method not in methods:
                return HttpResponse(status=405, headers={"Allow": ", ".join(methods)})
            if getattr(request, "arm_tenant", None) is None:
                return forbidden(
                    request,
                    "You are not a member of any tenant yet. Ask a tenant admin to add you.",
                )
            actor = request.arm_actor
            if not actor.has_any(roles):
                return forbidden(request, f"This needs one of the roles: {', '.join(roles)}.")
            return view(request, *args, **kwargs)

        wrapper.arm_roles = roles
        return wrapper

    return decorate


def can(request, *roles: str) -> bool:
    actor = getattr(request, "arm_actor", None)
    return bool(actor and actor.has_any(roles))


@login_required
@require_POST
def tenant_switch(request):
    """Make another of the user's tenants the active one (session key ``arm_tenant``)."""
    slug = request.POST.get("tenant", "")
    membership = next((m for m in memberships_of(request.user) if m.tenant.slug == slug), None)
    if membership is None:
        # Not a member: say so without revealing whether the tenant exists.
        messages.error(request, "You are not a member of that tenant.")
        return redirect("ui:directory")
    request.session[SESSION_TENANT_KEY] = membership.tenant.slug
    messages.success(request, f"Switched to {membership.tenant.name}.")
    # Pages of the old tenant's objects would 404 now, so land on the directory.
    return redirect("ui:directory")
