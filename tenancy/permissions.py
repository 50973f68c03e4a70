"""The role table, enforced on every API endpoint (see SPEC §2)."""

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from arm.errors import FourEyesViolation, RoleRequired
from tenancy.choices import READ_ROLES, Role


class TenantRequired(exceptions.APIException):
    status_code = 400
    default_code = "tenant_required"
    default_detail = "Choose a tenant with the X-ARM-Tenant header."


def require_roles(actor, roles, what: str = "This action") -> None:
    """Raise RoleRequired unless ``actor`` holds one of ``roles``. Services and views call this."""
    if not actor.has_any(roles):
        shown = {str(r) for r in roles} | ({str(Role.ADMIN)} if set(roles) - {Role.RUNTIME} else set())
        names = ", ".join(sorted(shown))
        raise RoleRequired(f"{what} needs one of the roles: {names}.")


class HasTenantRole(BasePermission):
    """Authenticated, bound to a tenant, and holding a role the view asks for this action.

    Views declare ``read_roles`` (safe methods), ``write_roles`` (the rest) and optionally
    ``action_roles`` ({action name: roles}) for custom actions.
    """

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        error = getattr(request, "arm_tenant_error", None)
        if error is not None:
            if error.code == "tenant_required":
                raise TenantRequired(error.message)
            raise exceptions.PermissionDenied(error.message, code=error.code)
        actor = getattr(request, "arm_actor", None)
        if actor is None:
            raise exceptions.NotAuthenticated()
        roles = view.roles_for(request) if hasattr(view, "roles_for") else READ_ROLES
        if roles is None:  # the view checks roles itself (e.g. depends on the target state)
            return True
        require_roles(actor, roles)
        return True


def default_roles_for(view, request, read_roles=READ_ROLES, write_roles=(Role.OPERATOR,)):
    action = getattr(view, "action", None)
    mapping = getattr(view, "action_roles", {}) or {}
    if action in mapping:
        return mapping[action]
    return read_roles if request.method in SAFE_METHODS else write_roles


def principal_of(ref: str) -> str:
    """The principal behind an actor reference: for ``key:<prefix>``, the person (or root key) the key was
    minted for through its whole chain (``ApiKey.acts_for``); anything else is its own principal."""
    if ref.startswith("key:"):
        from tenancy.models import ApiKey

        key = ApiKey.objects.filter(prefix=ref[4:]).only("prefix", "principal").first()
        if key is not None:
            return key.acts_for
    return ref


def principal_expression(ref_field: str):
    """``principal_of`` as a SQL expression over a model's column of actor references (``requester``,
    say): read with the row, it saves the key lookup a four-eyes check would make next. The same rule: a
    ``key:<prefix>`` reference is its key's ``acts_for`` (the key's principal, else the reference itself),
    anything else, or a key that is not found, is itself. Kept equal to ``principal_of`` by a test."""
    from django.db.models import Case, CharField, F, OuterRef, Subquery, Value, When
    from django.db.models.functions import Coalesce, NullIf, Substr

    from tenancy.models import ApiKey

    principal = ApiKey.objects.filter(prefix=Substr(OuterRef(ref_field), len("key:") + 1)).values("principal")[:1]
    of_key = Coalesce(NullIf(Subquery(principal), Value("")), F(ref_field))
    return Case(
        When(**{f"{ref_field}__startswith": "key:"}, then=of_key),
        default=F(ref_field),
        output_field=CharField(),
    )


def principals_of(refs) -> dict[str, str]:
    """``principal_of`` for many references in one query (a list of approval requests, say)."""
    refs = set(refs)
    prefixes = {ref[4:] for ref in refs if ref and ref.startswith("key:")}
    found = {}
    if prefixes:
        from tenancy.models import ApiKey

        found = {
            key.prefix: key.acts_for for key in ApiKey.objects.filter(prefix__in=prefixes).only("prefix", "principal")
        }
    return {ref: found.get(ref[4:], ref) if ref and ref.startswith("key:") else ref for ref in refs}


def actor_principal(actor) -> str:
    if actor.api_key is not None and actor.ref == f"key:{actor.api_key.prefix}":
        return actor.api_key.acts_for
    return principal_of(actor.ref)


def is_same_principal(actor, ref: str, principals: dict[str, str] | None = None) -> bool:
    """Four eyes compares people, not credentials: a key counts as the person at the root of its minting
    chain (a key minted by a key minted by alice is alice), so nobody approves their own work through
    keys of their own. Commands (``system``) are nobody: two of their keys are not one person.
    ``principals`` (from ``principals_of``) saves the key lookup when a page checks many references."""
    if not ref:
        return False
    principal = principals[ref] if principals is not None and ref in principals else principal_of(ref)
    return bool({actor.ref, actor_principal(actor)} & {ref, principal})


def _acting(ref: str, person: str) -> str:
    return ref if ref == person else f"{ref} (acting for {person})"


def four_eyes_error(actor, ref: str, *, did: str, cannot: str) -> FourEyesViolation:
    """The refusal names who did the earlier step and who is trying now, each with the person a key
    acts for, e.g. ``Four eyes: user:alice created version 1.4.0; key:ab12 (acting for user:alice)
    cannot also approve it.``"""
    if actor.ref == ref:
        return FourEyesViolation(f"Four eyes: {ref} {did} and cannot also {cannot}.")
    doer = _acting(ref, principal_of(ref))
    return FourEyesViolation(
        f"Four eyes: {doer} {did}; {_acting(actor.ref, actor_principal(actor))} cannot also {cannot}."
    )
