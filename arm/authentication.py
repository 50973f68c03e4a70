"""API authentication: ``Authorization: Bearer <key>`` for machines, the Django session for people.

Both put the actor and tenant in the request context (``arm.context``) so services and the audit
trail know who acted.
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header

from arm.context import Actor, set_context
from arm.models import ApiKey, hash_secret
from arm.tenancy import TenantResolutionError, resolve_user_tenant

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
        key = ApiKey.objects.select_related("tenant", "instance").filter(prefix=pieces[1]).first()
        if key is None or not hmac.compare_digest(key.key_hash, hash_secret(raw)):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
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
