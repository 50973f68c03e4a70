"""Tenancy and identity: tenants, memberships (a user's roles in one tenant) and API keys.

The app label is ``arm`` (``tenancy.apps.TenancyConfig``): tables, migrations and content types keep
the names they had when these models lived in the ``arm`` package."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.fields.related_descriptors import ForwardManyToOneDescriptor

from arm.models import Recorded, RecordedModel
from arm.validators import validate_name
from tenancy.choices import MEMBER_ROLES, Role

slug_validator = RegexValidator(r"^[a-z0-9][a-z0-9-]{0,62}\Z", "Use lowercase letters, digits and dashes.")


def validate_roles(roles, *, allowed=tuple(Role.values)) -> None:
    if not isinstance(roles, list) or not roles:
        raise ValidationError({"roles": "Give at least one role."})
    unknown = sorted({str(r) for r in roles} - set(allowed))
    if unknown:
        raise ValidationError({"roles": f"Unknown role(s): {', '.join(unknown)}. Known: {', '.join(allowed)}."})


class Tenant(RecordedModel):
    """An organisation. Every domain row belongs to exactly one tenant."""

    audit = Recorded(
        "TENANT",
        tenant="",
        delete_refused="a tenant's change records point at it (PROTECT): its chain, and the tenant, stay",
    )
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.CharField(max_length=63, unique=True, validators=[slug_validator, validate_name])
    name = models.CharField(max_length=200, validators=[validate_name])
    heartbeat_window_seconds = models.PositiveIntegerField(default=settings.ARM_HEARTBEAT_WINDOW_SECONDS)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class _TenantDescriptor(ForwardManyToOneDescriptor):
    """``obj.tenant`` answers the request's tenant (``tenancy.context``) when it is that tenant, instead of
    querying it again: every audited write reads ``obj.tenant`` for its change record, and the request
    already loaded the tenant to authenticate. Any other tenant id is fetched as usual."""

    def get_object(self, instance):
        from tenancy.context import current_tenant

        tenant = current_tenant()
        if tenant is not None and tenant.pk == getattr(instance, self.field.attname):
            return tenant
        return super().get_object(instance)


class TenantKey(models.ForeignKey):
    """The foreign key every tenant-owned row uses (a plain ``ForeignKey`` in migrations)."""

    forward_related_accessor_class = _TenantDescriptor

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.ForeignKey", args, kwargs


class Membership(RecordedModel):
    """A user's set of roles in one tenant. A user may belong to several tenants."""

    audit = Recorded(
        "MEMBERSHIP",
        events=(
            "MEMBER_ADDED",  # a new person invited with their first roles (the membership's creation)
            "MEMBER_REMOVED",  # a person taken out of the tenant (the membership's deletion)
            # The person's account, shared by their tenants: recorded in each, the target being the User.
            "USER_DEACTIVATED",
            "USER_REACTIVATED",
            "PASSWORD_LINK_CREATED",
            "PASSWORD_SET",
            "LOGIN_FAILED",
            "ACCOUNT_LOCKED_OUT",
        ),
    )
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    roles = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "user"],
                name="membership_unique_user_per_tenant",
                violation_error_message="This user is already a member of the tenant.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({', '.join(self.roles)})"

    def clean(self) -> None:
        validate_roles(self.roles, allowed=MEMBER_ROLES)


KEY_PREFIX = "arm"


def hash_secret(secret: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no stretching needed) and keeps
    # authentication off the hot path's critical budget.
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(RecordedModel):
    """A machine credential. Only a SHA-256 of the secret is stored; the secret is shown once.

    Format: ``arm_<prefix>_<secret>``; the 12-character prefix is stored in clear to find the row.
    """

    audit = Recorded(
        "API_KEY",
        # The secret's hash: a record says it changed, never what it is.
        name_only=("key_hash",),
        # Stamped on every authenticated request (tenancy.authentication, one UPDATE).
        unrecorded_columns=("last_used_at",),
        events=("API_KEY_REVOKED",),
    )
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, validators=[validate_name])
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    roles = models.JSONField(default=list)
    # A key may be bound to one instance: that binding is registry's (``registry.InstanceKey``, read here
    # as ``instance_binding``), since registry sits above this app.
    created_by = models.CharField(max_length=200, blank=True)
    # Who this key acts for, resolved through the whole minting chain when it is minted: the person
    # at the root (``user:<name>``), or, for a chain rooted in a command (``system``), the root key
    # itself. Four eyes compares principals, so no chain of keys makes one person into two.
    principal = models.CharField(max_length=200, blank=True)
    # The root person, when there is one: a key never holds more than that person holds now (see
    # ``tenancy.authentication``). PROTECT: deactivate people, do not delete them while their keys exist.
    principal_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The prefixes of every key above this one in its minting chain, root first (its minter last),
    # written when it is minted: authentication refuses a key any of whose ancestors is revoked, in the
    # query that reads the key (``minter_revoked``), whatever the revocation cascade reached.
    minters = models.JSONField(default=list, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="apikey_tenant_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    def clean(self) -> None:
        validate_roles(self.roles)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def acts_for(self) -> str:
        """The principal four eyes compares: the root person, else the root key (this one if minted by
        a command)."""
        return self.principal or f"key:{self.prefix}"

    @staticmethod
    def generate() -> tuple[str, str, str]:
        """Return (full key, prefix, hash)."""
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        full = f"{KEY_PREFIX}_{prefix}_{secret}"
        return full, prefix, hash_secret(full)


class MinterRevoked(models.Func):
    """``EXISTS``: a key named in this key's ``minters`` is revoked. One index lookup (``prefix``) per
    ancestor, read with each backend's JSON array function, so it rides in the query that reads the key."""

    output_field = models.BooleanField()
    sql = (
        "EXISTS (SELECT 1 FROM {elements} JOIN {table} AS ancestor ON ancestor.prefix = minter.value "
        "WHERE ancestor.revoked_at IS NOT NULL)"
    )

    def __init__(self, minters="minters"):
        super().__init__(models.F(minters))

    def _sql(self, compiler, connection, elements: str):
        template = self.sql.format(elements=elements, table=connection.ops.quote_name(ApiKey._meta.db_table))
        return super().as_sql(compiler, connection, template=template)

    def as_sql(self, compiler, connection, **extra):
        return self._sql(compiler, connection, "json_each(%(expressions)s) AS minter")

    def as_postgresql(self, compiler, connection, **extra):
        return self._sql(compiler, connection, "jsonb_array_elements_text(%(expressions)s) AS minter(value)")
