"""The role table, enforced on every API endpoint (see SPEC §2)."""

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from arm.choices import READ_ROLES, Role
from arm.errors import RoleRequired


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


def _people_behind(ref: str, api_key=None) -> set[str]:
    """The principal ``ref`` plus, for an API key, the person who minted it (never a generic
    ``system`` creator: two keys made by commands are not therefore the same person)."""
    refs = {ref}
    if ref.startswith("key:"):
        from arm.models import ApiKey

        creator = api_key.created_by if api_key is not None else None
        if creator is None:
            creator = ApiKey.objects.filter(prefix=ref[4:]).values_list("created_by", flat=True).first()
        if creator and not creator.startswith("system"):
            refs.add(creator)
    return refs


def is_same_principal(actor, ref: str) -> bool:
    """Four eyes compares people, not credentials: a key counts as the person who created it, so an
    admin cannot approve their own work with a key they minted."""
    if not ref:
        return False
    return bool(_people_behind(actor.ref, actor.api_key) & _people_behind(ref))
