"""API authentication: ``Authorization: Bearer <key>`` for machines, the Django session for people.

Both put the actor and tenant in the request context (``tenancy.context``) so services and the audit
trail know who acted.
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.db.models import JSONField, OuterRef, Subquery
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header

from arm.compiled import CompiledQuery
from tenancy.choices import Role
from tenancy.context import Actor, set_context
from tenancy.models import ApiKey, Membership, MinterRevoked, hash_secret
from tenancy.resolution import TenantResolutionError, resolve_user_tenant

LAST_USED_RESOLUTION = timedelta(minutes=1)


class KeyPrincipal:
    """What ``request.user`` is for an API key request."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False

    def __init__(self, key: ApiKey):
        self.key = key
        self.pk = None
        self.username = f"key:{key.prefix}"

    def __str__(self) -> str:
        return self.username


def bind_request(request, actor: Actor, tenant) -> None:
    request.arm_actor = actor
    request.arm_tenant = tenant
    set_context(actor, tenant)


def effective_key_roles(key: ApiKey) -> set[str]:
    """A key never holds more than the person it acts for holds now: its roles narrowed to the root
    person's current roles in the tenant (an admin holds every role), none when that person was
    deactivated or left the tenant. Keys rooted in a command keep their roles (revoking a key revokes
    what it minted). Needs ``principal_roles`` annotated (see ``ApiKeyAuthentication``)."""
    person = key.principal_user
    if person is None:
        return set(key.roles)
    if not person.is_active:
        return set()
    if person.is_superuser:
        return set(key.roles)
    held = set(getattr(key, "principal_roles", None) or ())
    if Role.ADMIN in held:
        return set(key.roles)
    return set(key.roles) & held


def _key(prefix: str):
    return (
        ApiKey.objects.select_related("tenant", "principal_user", "instance_binding")
        .annotate(
            minter_revoked=MinterRevoked(),
            principal_roles=Subquery(
                Membership.objects.filter(tenant=OuterRef("tenant"), user=OuterRef("principal_user")).values("roles")[
                    :1
                ],
                output_field=JSONField(),
            ),
        )
        .filter(prefix=prefix)[:1]  # the prefix is unique
    )


# Read on every API request: compiled once per process (arm/compiled.py).
_KEY = CompiledQuery(_key, str)


def key_lookup(prefix: str):
    """The key, its tenant, its root person, that person's roles in the tenant now and whether a key above
    it in its minting chain is revoked, in one query, with the instance it is bound to (its id, from
    ``registry.InstanceKey``: the relation registry adds to the key)."""
    return _KEY.first(prefix)


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <key>'.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid API key.") from exc
        pieces = raw.split("_", 2)
        if len(pieces) != 3 or pieces[0] != "arm":
            raise exceptions.AuthenticationFailed("Invalid API key.")
        # One query: the key, its tenant, its root person and that person's roles in the tenant now.
        key = key_lookup(pieces[1])
        if key is None or not hmac.compare_digest(key.key_hash, hash_secret(raw)):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if key.minter_revoked:
            # Revoking a key revokes what it minted (``api_key_revoke``); this holds even for a key the
            # cascade did not reach.
            raise exceptions.AuthenticationFailed("This API key was minted by a key that has been revoked.")
        roles = effective_key_roles(key)
        if not roles:
            raise exceptions.AuthenticationFailed(
                f"This API key acts for {key.principal}, who no longer holds any of its roles in this tenant."
            )
        if roles != set(key.roles):
            key.roles = sorted(roles)
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        bind_request(request, Actor.for_key(key), key.tenant)
        return KeyPrincipal(key), key

    def authenticate_header(self, request):
        return 'Bearer realm="arm"'


class TenantSessionAuthentication(SessionAuthentication):
    """Session auth (CSRF enforced) that also resolves the active tenant and the member's roles."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user = result[0]
        try:
            tenant, actor = resolve_user_tenant(request._request, user)
        except TenantResolutionError as exc:
            request.arm_tenant_error = exc
            return result
        bind_request(request, actor, tenant)
        return result


# OpenAPI security schemes of the two authentication classes (drf-spectacular finds them by target_class).
class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.authentication.ApiKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An ARM API key: `Bearer arm_<prefix>_<secret>`."}


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenancy.authentication.TenantSessionAuthentication"
    name = "sessionAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
