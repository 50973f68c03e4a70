"""The username rule: a username names one account up to case and Unicode compatibility form (``OPS`` and
``ＯＰＳ`` are ``ops``), backed by the unique index on ``LOWER(username)`` (migration ``arm.0007``). In the
bottom layer so that every app reads names the same way: accounts (creating, finding and adding people)
and registry (a template's owners)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Exists, Value
from django.db.models.functions import Lower

from tenancy.models import Membership, Tenant


def _lowered(username: str):
    # NFKC as Django normalizes every username it saves, then the database's LOWER, as the index does
    return Lower(Value(get_user_model().normalize_username(username)))


def accounts_named(username: str):
    """The accounts (at most one) ``username`` names under the rule."""
    User = get_user_model()
    return User._default_manager.annotate(_username_lower=Lower(User.USERNAME_FIELD)).filter(
        _username_lower=_lowered(username)
    )


def member_usernames(tenant_id, names) -> set[str]:
    """The names among ``names`` that name, under the rule, an account holding a membership in the tenant.
    One query, whatever the number of names."""
    names = list(dict.fromkeys(names))
    if not names:
        return set()
    field = get_user_model().USERNAME_FIELD
    members = Membership.objects.filter(tenant_id=tenant_id).annotate(_username_lower=Lower(f"user__{field}"))
    found = (
        Tenant.objects.filter(pk=tenant_id)
        .values(**{f"n{i}": Exists(members.filter(_username_lower=_lowered(name))) for i, name in enumerate(names)})
        .first()
    ) or {}
    return {name for i, name in enumerate(names) if found.get(f"n{i}")}
