"""Who a management command acts as (``system`` or ``--actor <username>``) and the tenants it is given by
slug (an unknown slug is a usage error, exit 2)."""

from django.contrib.auth import get_user_model

from arm.commandutils import usage_error
from arm.validators import terminal_safe
from tenancy.context import Actor
from tenancy.models import Tenant


def command_actor(username: str | None) -> Actor:
    if not username:
        return Actor.system()
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise usage_error(terminal_safe(f"No user named {username!r}."))
    return Actor(ref=f"user:{username}", user=user, roles=Actor.system().roles, is_superuser=True)


def get_tenant(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise usage_error(terminal_safe(f"No tenant with slug {slug!r}."))
    return tenant


def tenants_for(slug: str | None):
    return [get_tenant(slug)] if slug else list(Tenant.objects.order_by("slug"))
