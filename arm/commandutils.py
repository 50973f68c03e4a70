"""Shared plumbing for management commands: changes they make are attributed (actor ``system`` or
``--actor <username>``), and domain errors become clean CommandErrors."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from arm.context import Actor
from arm.errors import DomainError
from arm.models import Tenant
from arm.validators import terminal_safe


def command_actor(username: str | None) -> Actor:
    if not username:
        return Actor.system()
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user named {username!r}.")
    return Actor(ref=f"user:{username}", user=user, roles=Actor.system().roles, is_superuser=True)


def get_tenant(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"No tenant with slug {slug!r}.")
    return tenant


def tenants_for(slug: str | None):
    return [get_tenant(slug)] if slug else list(Tenant.objects.order_by("slug"))


def as_command_error(exc: Exception) -> CommandError:
    """A clean CommandError; user-supplied text in it is escaped for the terminal (``terminal_safe``)."""
    if isinstance(exc, ValidationError):
        return CommandError(
            terminal_safe(
                "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.message_dict.items())
                if hasattr(exc, "error_dict")
                else "; ".join(exc.messages)
            )
        )
    if isinstance(exc, DomainError):
        return CommandError(terminal_safe(exc.message))
    return CommandError(terminal_safe(str(exc)))
