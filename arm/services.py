"""Writes to tenancy and identity: tenants, memberships, API keys. Each writes its change record."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from arm.choices import MEMBER_ROLES, Role
from arm.context import Actor, current_actor
from arm.errors import Conflict, RoleRequired
from arm.models import ApiKey, Membership, Tenant, validate_roles
from arm.permissions import require_roles
from audit.choices import EventType
from audit.services import diff, record_change

TENANT_FIELDS = ("name", "heartbeat_window_seconds")


def tenant_create(*, slug: str, name: str = "", actor: Actor | None = None, **data) -> Tenant:
    actor = actor or current_actor()
    with transaction.atomic():
        tenant = Tenant(slug=slug, name=name or slug, **{k: v for k, v in data.items() if k in TENANT_FIELDS})
        tenant.full_clean()
        tenant.save()
        record_change(
            tenant=tenant,
            event_type=EventType.TENANT_CREATED,
            target=tenant,
            payload={"slug": slug, "name": tenant.name},
            actor=actor,
        )
    return tenant


def tenant_update(*, tenant: Tenant, actor: Actor | None = None, **data) -> Tenant:
    """Rename a tenant or change its heartbeat window (platform operators: superusers and commands)."""
    actor = actor or current_actor()
    if not actor.is_superuser:
        raise RoleRequired("Changing a tenant is for platform operators (superusers).")
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        before = {f: getattr(tenant, f) for f in TENANT_FIELDS}
        for key, value in data.items():
            if key in TENANT_FIELDS:
                setattr(tenant, key, value)
        tenant.full_clean()
        changes = diff(before, {f: getattr(tenant, f) for f in TENANT_FIELDS})
        if changes:
            tenant.save(update_fields=[*changes])
            record_change(
                tenant=tenant,
                event_type=EventType.TENANT_UPDATED,
                target=tenant,
                payload={"changes": changes},
                actor=actor,
            )
    return tenant


def membership_set(*, tenant: Tenant, user, roles: list[str], actor: Actor | None = None) -> Membership:
    """Give ``user`` exactly ``roles`` in ``tenant`` (creating the membership if needed)."""
    actor = actor or current_actor()
    require_roles(actor, (Role.ADMIN,), "Changing memberships")
    roles = sorted(set(roles))
    validate_roles(roles, allowed=MEMBER_ROLES)
    with transaction.atomic():
        membership, created = Membership.objects.select_for_update().get_or_create(
            tenant=tenant, user=user, defaults={"roles": roles}
        )
        before = [] if created else sorted(membership.roles)
        if not created and before != roles:
            membership.roles = roles
            membership.save(update_fields=["roles"])
        if created or before != roles:
            record_change(
                tenant=tenant,
                event_type=EventType.MEMBERSHIP_CHANGED,
                target=membership,
                payload={"user": user.get_username(), "roles": {"before": before, "after": roles}},
                actor=actor,
            )
    return membership


def user_create(*, username: str, password: str | None = None, email: str = ""):
    User = get_user_model()
    user = User(username=username, email=email)
    user.full_clean(exclude=["password"])
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    try:
        user.save()
    except IntegrityError as exc:
        raise ValidationError({"username": "This username is taken."}) from exc
    return user


def grantable_roles(actor: Actor) -> set[str]:
    """The roles ``actor`` may put on a key it mints: never more than it holds (an admin holds every
    role, ``runtime`` included; a superuser or command everything)."""
    if actor.is_superuser or Role.ADMIN in actor.roles:
        return set(Role.values)
    return set(actor.roles)


def api_key_create(
    *, tenant: Tenant, name: str, roles: list[str], instance=None, actor: Actor | None = None
) -> tuple[ApiKey, str]:
    """Create a key; returns (key, secret). The secret exists only in this return value.

    A key is never more powerful than whoever mints it: its roles are a subset of the minter's, a key
    bound to an instance mints only keys bound to that instance, and the new key acts for the minter's
    principal (the person at the root of the minting chain), which four eyes and the live role check in
    ``arm.authentication`` compare against.
    """
    actor = actor or current_actor()
    require_roles(actor, (Role.ADMIN,), "Creating an API key")
    roles = sorted(set(roles))
    beyond = sorted(set(roles) - grantable_roles(actor))
    if beyond:
        raise ValidationError({"roles": f"You cannot grant role(s) you do not hold: {', '.join(beyond)}."})
    bound = actor.bound_instance_id
    if bound is not None:
        if instance is not None and instance.pk != bound:
            raise ValidationError({"instance": "A key bound to an instance can only mint keys bound to it."})
        if instance is None:
            from django.apps import apps

            instance = apps.get_model("registry", "AgentInstance").objects.get(pk=bound)
    if actor.api_key is not None:
        principal, principal_user = actor.api_key.acts_for, actor.api_key.principal_user
    elif actor.user is not None:
        principal, principal_user = actor.ref, actor.user
    else:  # a command: the key stands for itself
        principal, principal_user = "", None
    full, prefix, key_hash = ApiKey.generate()
    with transaction.atomic():
        key = ApiKey(
            tenant=tenant,
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            roles=roles,
            instance=instance,
            created_by=actor.ref,
            principal=principal,
            principal_user=principal_user,
        )
        key.full_clean()
        key.save()
        record_change(
            tenant=tenant,
            event_type=EventType.API_KEY_CREATED,
            target=key,
            payload={
                "name": name,
                "prefix": prefix,
                "roles": key.roles,
                "instance": str(instance.pk) if instance else None,
                "acts_for": key.acts_for,
            },
            actor=actor,
        )
    return key, full


def api_key_revoke(*, key: ApiKey, actor: Actor | None = None) -> ApiKey:
    """Revoke a key and, with it, every key it minted (transitively): a minted key never outlives the
    authority it came from. Each revocation writes its own record."""
    actor = actor or current_actor()
    require_roles(actor, (Role.ADMIN,), "Revoking an API key")
    with transaction.atomic():
        now = timezone.now()
        if not ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now):
            raise Conflict("This API key is already revoked.", code="already_revoked")
        key.revoked_at = now
        record_change(
            tenant=key.tenant,
            event_type=EventType.API_KEY_REVOKED,
            target=key,
            payload={"name": key.name, "prefix": key.prefix},
            actor=actor,
        )
        minters = [key.prefix]
        while minters:
            minted = list(
                ApiKey.objects.select_for_update()
                .filter(tenant_id=key.tenant_id, created_by__in=[f"key:{p}" for p in minters], revoked_at__isnull=True)
                .select_related("tenant")
            )
            ApiKey.objects.filter(pk__in=[k.pk for k in minted]).update(revoked_at=now)
            for child in minted:
                record_change(
                    tenant=child.tenant,
                    event_type=EventType.API_KEY_REVOKED,
                    target=child,
                    payload={"name": child.name, "prefix": child.prefix, "minted_by_revoked_key": key.prefix},
                    actor=actor,
                )
            minters = [k.prefix for k in minted]
    return key
