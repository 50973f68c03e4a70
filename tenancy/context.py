"""Who is acting, for which tenant: carried in a context variable through every request and command.

Middleware (UI and admin), the API authentication (API) and ``actor_context`` (commands, shell, tests)
set it; services and the audit trail read it so every change record names its actor. Outside any of
these, the actor is ``system`` and not ``None``: changes are never recorded anonymously.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.exceptions import ObjectDoesNotExist

from tenancy.choices import Role

if TYPE_CHECKING:
    from tenancy.models import ApiKey, Tenant


@dataclass(frozen=True)
class Actor:
    """An acting principal. ``ref`` is stable and is what four-eyes compares."""

    ref: str
    user: object | None = None
    api_key: ApiKey | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    is_superuser: bool = False

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(ref=name, roles=frozenset(Role.values), is_superuser=True)

    @classmethod
    def for_user(cls, user, roles=(), *, is_superuser: bool = False) -> Actor:
        return cls(ref=f"user:{user.get_username()}", user=user, roles=frozenset(roles), is_superuser=is_superuser)

    @classmethod
    def for_key(cls, key: ApiKey) -> Actor:
        return cls(ref=f"key:{key.prefix}", api_key=key, roles=frozenset(key.roles))

    @property
    def bound_instance_id(self):
        """The instance the actor's key is bound to (``registry.InstanceKey``, read through the relation it
        adds to the key, which authentication loads with the key), else None."""
        if self.api_key is None:
            return None
        try:
            return self.api_key.instance_binding.instance_id
        except ObjectDoesNotExist:
            return None

    def has_any(self, roles) -> bool:
        """True when the actor holds one of ``roles`` (``admin`` holds every member role)."""
        if self.is_superuser:
            return True
        # Admin implies every member role, never ``runtime``: a runtime-only action stays closed to it,
        # one open to a member role (heartbeat: operator or runtime) is open to admins too.
        if Role.ADMIN in self.roles and set(roles) - {Role.RUNTIME}:
            return True
        return bool(self.roles & set(roles))


@dataclass(frozen=True)
class RequestContext:
    actor: Actor
    tenant: Tenant | None = None


_context: ContextVar[RequestContext | None] = ContextVar("arm_request_context", default=None)
SYSTEM = Actor.system()


def current() -> RequestContext:
    return _context.get() or RequestContext(actor=SYSTEM)


def current_actor() -> Actor:
    return current().actor


def current_tenant() -> Tenant | None:
    return current().tenant


def set_context(actor: Actor | None, tenant: Tenant | None = None):
    """Set the context (``None`` clears it); returns a token for ``reset_context``."""
    return _context.set(RequestContext(actor=actor, tenant=tenant) if actor is not None else None)


def reset_context(token) -> None:
    _context.reset(token)


@contextlib.contextmanager
def actor_context(actor: Actor, tenant: Tenant | None = None):
    token = set_context(actor, tenant)
    try:
        yield
    finally:
        reset_context(token)
