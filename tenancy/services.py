"""Writes to tenancy and identity: tenants, memberships, API keys. Each save's change record
(``audit.recording``) is annotated with the service's event and actor (``arm.recording.annotate``); what
is not a write of a recorded model (an account's state, shared by the person's tenants) is reported with
``tenancy.signals.account_event``, which audit (above this app) records, in the same transaction.

Locks (PostgreSQL row locks; SQLite runs one writer at a time). Rules that span rows are checked under
the locks of every row they read, always taken in this order, so two writers never wait on each other in
a cycle: people's account rows (id order), then tenants (id order), then the rows written, and the change
records last (appending takes the tenant's chain head).

- Every tenant keeps an active admin. A membership change or removal locks the person, then the tenant;
  deactivating an account (shared by all the person's tenants) locks the person and the acting person,
  then every tenant the person is admin of, and checks each one. Tenants are locked ``FOR NO KEY
  UPDATE``: rows referencing the tenant (change records, decisions, ledger entries) still insert.
- A revoked key's descendants are revoked with it: a mint locks its minter's row and re-checks it, and
  the revocation locks each generation before reading the next (``api_key_revoke``).

Accounts: a username names one account up to case and Unicode compatibility form (``username_check``,
backed by a unique index on ``LOWER(username)``); every password set goes through Django's validators
(``password_check``); only the latest set-password link made for a person works (``link_tokens``).
"""

from __future__ import annotations

import uuid

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from arm.errors import AlreadyTaken, Conflict, NotFound, RoleRequired
from arm.recording import annotate
from tenancy.choices import MEMBER_ROLES, READ_ROLES, Role
from tenancy.context import Actor, current_actor
from tenancy.models import ApiKey, Membership, MinterRevoked, Tenant, validate_roles
from tenancy.permissions import require_roles
from tenancy.signals import account_event, latest_password_link
from tenancy.usernames import accounts_named

TENANT_FIELDS = ("name", "heartbeat_window_seconds")


def tenant_create(*, slug: str, name: str = "", actor: Actor | None = None, **data) -> Tenant:
    actor = actor or current_actor()
    with transaction.atomic():
        tenant = Tenant(slug=slug, name=name or slug, **{k: v for k, v in data.items() if k in TENANT_FIELDS})
        tenant.full_clean()
        with annotate(tenant, actor=actor):
            tenant.save()
    return tenant


def tenant_update(*, tenant: Tenant, actor: Actor | None = None, **data) -> Tenant:
    """Rename a tenant or change its heartbeat window (platform operators: superusers and commands)."""
    actor = actor or current_actor()
    if not actor.is_superuser:
        raise RoleRequired("Changing a tenant is for platform operators (superusers).")
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update(no_key=True).get(pk=tenant.pk)
        for key, value in data.items():
            if key in TENANT_FIELDS:
                setattr(tenant, key, value)
        tenant.full_clean()
        changes = tenant.changed_fields()
        if changes:
            with annotate(tenant, actor=actor):
                tenant.save(update_fields=[*changes])
    return tenant


def _person(actor: Actor):
    """The person behind an actor: the signed-in user, or the root person of a key's minting chain."""
    if actor.user is not None:
        return actor.user
    if actor.api_key is not None:
        return actor.api_key.principal_user
    return None


def _is_admin(roles) -> bool:
    return Role.ADMIN in (roles or ())


def _lock_people(*users) -> dict:
    """Lock people's account rows, in id order, before any tenant's: every change of a person's
    memberships or account takes their row first, so the tenants they belong to and their roles there
    cannot change under a check that reads them. Returns {pk: locked user}."""
    ids = sorted({user.pk for user in users if user is not None})
    return {u.pk: u for u in get_user_model().objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")}


def _lock_person(user):
    return _lock_people(user)[user.pk]


def _lock_tenants(tenant_ids) -> None:
    """Lock tenants' rows, in id order (no deadlock between two callers locking several): the "last
    admin" rule of a tenant is checked and kept under its lock. ``FOR NO KEY UPDATE``, not ``FOR
    UPDATE``: rows referencing the tenant (change records, decisions, ledger entries) insert meanwhile."""
    list(Tenant.objects.select_for_update(no_key=True).filter(pk__in=list(tenant_ids)).order_by("pk").values("pk"))


def _lock_tenant(tenant: Tenant) -> None:
    _lock_tenants([tenant.pk])


def _ensure_other_admin(tenant: Tenant, membership: Membership, what: str) -> None:
    """409 unless someone else (active) stays admin of ``tenant`` after ``membership`` stops being one."""
    others = Membership.objects.filter(tenant=tenant, user__is_active=True).exclude(pk=membership.pk)
    if not any(_is_admin(roles) for roles in others.values_list("roles", flat=True)):
        raise Conflict(
            f"{membership.user.get_username()} is the last admin of {tenant.name}: {what} would leave it without "
            "one. Make someone else admin first.",
            code="last_admin",
        )


def _sync_staff(user) -> None:
    """Tenant admins get Django admin access (``is_staff``, like the demo's admins; admin pages show them
    only their own tenants); someone who is admin nowhere any more loses it (superusers keep theirs)."""
    if user.is_superuser:
        return
    admin_somewhere = any(_is_admin(r) for r in Membership.objects.filter(user=user).values_list("roles", flat=True))
    if user.is_staff != admin_somewhere:
        user.is_staff = admin_somewhere
        user.save(update_fields=["is_staff"])


def pending_work_of(*, tenant: Tenant, user) -> dict:
    """What ``user`` has waiting for someone's sign-off in ``tenant``, directly or through keys acting for
    them: versions they created that sit in CANDIDATE, approval requests they requested still PENDING."""
    refs = [f"user:{user.get_username()}"] + [
        f"key:{p}" for p in ApiKey.objects.filter(tenant=tenant, principal_user=user).values_list("prefix", flat=True)
    ]
    versions = apps.get_model("registry", "AgentVersion").objects.filter(
        tenant=tenant, lifecycle_state="CANDIDATE", created_by__in=refs
    )
    approvals = apps.get_model("approvals", "ApprovalRequest").objects.filter(
        tenant=tenant, status="PENDING", requester__in=refs
    )
    return {"candidate_versions": versions.count(), "pending_approvals": approvals.count()}


def membership_set(*, tenant: Tenant, user, roles: list[str], actor: Actor | None = None) -> Membership:
    """Give ``user`` exactly ``roles`` in ``tenant`` (creating the membership if needed).

    Refuses (409 ``last_admin``) to take the admin role from the tenant's last admin. A person granting
    themselves ``approver`` is flagged in the record (``self_grant``, with their pending work): four eyes
    still holds, but others should see it."""
    actor = actor or current_actor()
    require_roles(actor, (Role.ADMIN,), "Changing memberships")
    roles = sorted(set(roles))
    validate_roles(roles, allowed=MEMBER_ROLES)
    with transaction.atomic():
        # The person, then the tenant: membership changes of one tenant are serialized (two admins demoting
        # each other at once must not leave it without an admin, and the read below cannot race a create).
        _lock_person(user)
        _lock_tenant(tenant)
        membership = Membership.objects.select_for_update(no_key=True).filter(tenant=tenant, user=user).first()
        created = membership is None
        if created:
            membership = Membership(tenant=tenant, user=user, roles=roles)
        before = [] if created else sorted(membership.roles)
        if not created and _is_admin(before) and not _is_admin(roles):
            _ensure_other_admin(tenant, membership, "removing the admin role")
        if created or before != roles:
            context = {"user": user.get_username()}
            person = _person(actor)
            if person is not None and person.pk == user.pk and Role.APPROVER in roles and Role.APPROVER not in before:
                context["self_grant"] = True
                context["pending_work"] = pending_work_of(tenant=tenant, user=user)
            membership.roles = roles
            with annotate(membership, actor=actor, **context):
                if created:
                    membership.save(force_insert=True)
                else:
                    membership.save(update_fields=["roles"])
        _sync_staff(user)
    return membership


def member_invite(
    *,
    tenant: Tenant,
    username: str,
    roles: list[str],
    actor: Actor,
    email: str = "",
    password: str | None = None,
) -> Membership:
    """A tenant admin adds a new person with ``roles``: with an initial ``password`` (Django's password
    validators apply), or without one (no usable password: they sign in after following a set-password
    link, see ``password_link_create``). Existing accounts are not taken over: the username must be new
    (``username_check``: no account with the same name up to case and Unicode compatibility forms)."""
    require_roles(actor, (Role.ADMIN,), "Adding people")
    roles = sorted(set(roles))
    validate_roles(roles, allowed=MEMBER_ROLES)
    with transaction.atomic():
        user = user_create(username=username, password=password or None, email=email)
        username = user.get_username()
        membership = Membership(tenant=tenant, user=user, roles=roles)
        membership.full_clean()
        sign_in = "password" if password else "set-password link"
        with annotate(membership, "MEMBER_ADDED", actor=actor, user=username, email=email, sign_in=sign_in):
            membership.save()
        _sync_staff(user)
    return membership


def member_add_existing(*, tenant: Tenant, username: str, roles: list[str], actor: Actor) -> Membership:
    """A tenant admin adds a person who already has an ARM account (from another tenant) with ``roles``:
    any active account, named by its username under the username rule. Only the membership is made: the
    account (password, email, other tenants) stays the person's, and account-wide actions still need
    admin of every tenant they belong to (``account_blockers_for``). The person sees the tenant in their
    switcher. A deactivated account reads as no account, so its state is not revealed."""
    require_roles(actor, (Role.ADMIN,), "Adding people")
    roles = sorted(set(roles))
    validate_roles(roles, allowed=MEMBER_ROLES)
    missing = ValidationError({"username": "No active ARM account has this username."})
    found = user_by_username(username)
    if found is None:
        raise missing
    with transaction.atomic():
        user = _lock_person(found)  # then the tenant (the lock order); its state is read under the lock
        _lock_tenant(tenant)
        if not user.is_active:
            raise missing
        name = user.get_username()
        if Membership.objects.filter(tenant=tenant, user=user).exists():
            raise AlreadyTaken({"username": f"{name} is already a member of {tenant.name}."})
        membership = Membership(tenant=tenant, user=user, roles=roles)
        membership.full_clean()
        with annotate(membership, "MEMBER_ADDED", actor=actor, user=name, sign_in="existing account"):
            membership.save()
        _sync_staff(user)
    return membership


def _member_of(tenant: Tenant, user) -> Membership:
    membership = Membership.objects.select_related("user", "tenant").filter(tenant=tenant, user=user).first()
    if membership is None:
        raise NotFound("No such member in this tenant.")
    return membership


def membership_remove(*, tenant: Tenant, membership: Membership, actor: Actor) -> None:
    """Take a person out of ``tenant`` (their account and other tenants stay; their keys here stop
    authenticating, see ``tenancy.authentication``). Never the tenant's last admin."""
    require_roles(actor, (Role.ADMIN,), "Removing members")
    if membership.tenant_id != tenant.pk:
        raise NotFound("No such member in this tenant.")
    with transaction.atomic():
        _lock_person(membership.user)
        _lock_tenant(tenant)
        membership = (
            Membership.objects.select_for_update(of=("self",)).select_related("user").filter(pk=membership.pk).first()
        )
        if membership is None:
            raise NotFound("No such member in this tenant.")
        if _is_admin(membership.roles):
            _ensure_other_admin(tenant, membership, "removing them")
        user = membership.user
        with annotate(membership, "MEMBER_REMOVED", actor=actor, user=user.get_username()):
            membership.delete()
        _sync_staff(user)


def account_blockers_for(*, tenant: Tenant, users, actor: Actor) -> dict:
    """{user pk: why ``actor`` (an admin of ``tenant``) may not change that person's whole account
    (deactivate or reactivate it, issue a set-password link)}, '' when they may. The account is shared by
    every tenant the person belongs to, so it is only an admin's to change when they are admin of all of
    them. Two queries for any number of people."""
    users = list(users)
    if actor.is_superuser:
        return {u.pk: "" for u in users}
    person = _person(actor)
    mine = {tenant.pk}
    if person is not None:
        mine |= {
            t
            for t, roles in Membership.objects.filter(user=person).values_list("tenant_id", "roles")
            if _is_admin(roles)
        }
    elsewhere = set(
        Membership.objects.filter(user__in=users).exclude(tenant_id__in=mine).values_list("user_id", flat=True)
    )
    reasons = {}
    for user in users:
        if person is not None and person.pk == user.pk:
            reasons[user.pk] = "This is your own account."
        elif user.is_superuser:
            reasons[user.pk] = (
                f"{user.get_username()} is a platform operator: only another platform operator can change that account."
            )
        elif user.pk in elsewhere:
            reasons[user.pk] = (
                f"{user.get_username()} also belongs to a tenant where you are not an admin, so their account is not "
                "yours to change: you can only remove them from this tenant."
            )
        else:
            reasons[user.pk] = ""
    return reasons


def account_blockers(*, tenant: Tenant, user, actor: Actor) -> str:
    return account_blockers_for(tenant=tenant, users=[user], actor=actor)[user.pk]


def _record_account(tenant: Tenant, event_type: str, user, payload: dict, actor: Actor) -> None:
    """One record about ``user``'s account in ``tenant`` (target: the User), written by audit's receiver
    of ``account_event`` inside the caller's transaction."""
    account_event.send(sender=type(user), tenant=tenant, event_type=event_type, user=user, payload=payload, actor=actor)


def _account_change(*, tenant: Tenant | None, user, actor: Actor, active: bool) -> None:
    """``tenant``: the tenant whose admin acts (the Members page); None for a platform operator."""
    what = "Deactivating people" if not active else "Reactivating people"
    if tenant is None:
        if not actor.is_superuser:
            raise RoleRequired(f"{what} outside a tenant is for platform operators (superusers).")
    else:
        require_roles(actor, (Role.ADMIN,), what)
        _member_of(tenant, user)
    with transaction.atomic():
        # The person and the acting person first (neither's memberships can change meanwhile, so whether
        # the account is the actor's to change still holds at commit), then every tenant the person is
        # admin of, in id order: the account is shared by all of them, so each one's last-admin rule is
        # checked under that tenant's lock, as a demotion or removal there checks it.
        user = _lock_people(user, _person(actor))[user.pk]
        blocker = "" if tenant is None else account_blockers(tenant=tenant, user=user, actor=actor)
        if blocker:
            raise Conflict(blocker, code="account_not_yours")
        if user.is_active == active:
            raise Conflict(
                f"{user.get_username()} is already {'active' if active else 'deactivated'}.", code="already_done"
            )
        memberships = list(Membership.objects.filter(user=user).select_related("tenant"))
        if not active:
            admin_of = [m for m in memberships if _is_admin(m.roles)]
            _lock_tenants(m.tenant_id for m in admin_of)
            for m in admin_of:
                _ensure_other_admin(m.tenant, m, "deactivating them")
        user.is_active = active
        user.save(update_fields=["is_active"])
        for m in memberships:
            _record_account(
                m.tenant,
                "USER_REACTIVATED" if active else "USER_DEACTIVATED",
                user,
                {"user": user.get_username()},
                actor,
            )


def user_deactivate(*, tenant: Tenant, user, actor: Actor) -> None:
    """Deactivate a person's account: they cannot sign in and every key acting for them stops
    authenticating. Only when ``actor`` is admin of every tenant the person belongs to (else: remove
    them from this tenant); never the last admin of a tenant, never oneself."""
    _account_change(tenant=tenant, user=user, actor=actor, active=False)


def user_reactivate(*, tenant: Tenant, user, actor: Actor) -> None:
    _account_change(tenant=tenant, user=user, actor=actor, active=True)


def account_set_active(*, user, active: bool, actor: Actor) -> None:
    """A platform operator (superuser, Django admin's user actions) deactivates or reactivates an
    account: the same rules as ``user_deactivate`` (never a tenant's last admin), for any account."""
    _account_change(tenant=None, user=user, actor=actor, active=active)


def _latest_link(user) -> str:
    """The id of the latest set-password link made for ``user``, '' when none was: it is named by the
    link's PASSWORD_LINK_CREATED records, which audit keeps and answers for (``latest_password_link``)."""
    return next((str(answer) for _, answer in latest_password_link.send(sender=type(user), user=user) if answer), "")


class SetPasswordLinkTokens(PasswordResetTokenGenerator):
    """Django's password-reset tokens (valid for ``PASSWORD_RESET_TIMEOUT``, spent once the password
    changes or the person signs in) that also name the latest link made for the person, so a new link
    makes every older one invalid."""

    def _make_hash_value(self, user, timestamp):
        return super()._make_hash_value(user, timestamp) + _latest_link(user)


link_tokens = SetPasswordLinkTokens()


def set_password_path(user) -> str:
    """``/accounts/set-password/<uidb64>/<token>/`` with a ``link_tokens`` token."""
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("set_password", args=[uid, link_tokens.make_token(user)])


def password_link_create(*, tenant: Tenant, user, actor: Actor) -> str:
    """A one-time set-password link for a member (ARM sends no mail: the admin hands it over); any link
    made for them before stops working. Recorded in each of their tenants (the account is theirs in all
    of them, and the token names the latest record), never the link itself."""
    require_roles(actor, (Role.ADMIN,), "Creating a set-password link")
    _member_of(tenant, user)
    blocker = account_blockers(tenant=tenant, user=user, actor=actor)
    if blocker:
        raise Conflict(blocker, code="account_not_yours")
    if not user.is_active:
        raise Conflict(f"{user.get_username()} is deactivated: reactivate them first.", code="inactive")
    with transaction.atomic():
        user = _lock_person(user)  # one link made at a time for a person: the latest is well defined
        link_id = uuid.uuid4().hex  # names this link in the token (not a secret: the token is signed)
        for m in Membership.objects.filter(user=user).select_related("tenant").order_by("tenant_id"):
            payload = {"user": user.get_username(), "made_in": tenant.slug, "link_id": link_id}
            _record_account(m.tenant, "PASSWORD_LINK_CREATED", user, payload, actor)
        return set_password_path(user)


def _record_password_set(user, actor: Actor, via: str) -> None:
    for m in Membership.objects.filter(user=user).select_related("tenant").order_by("tenant_id"):
        _record_account(m.tenant, "PASSWORD_SET", user, {"user": user.get_username(), "via": via}, actor)


def password_set_recorded(*, user) -> None:
    """A person set their password through a set-password link: recorded in each of their tenants."""
    with transaction.atomic():
        _record_password_set(user, Actor.for_user(user), "set-password link")


def _same_username(username: str):
    """Accounts whose username equals ``username`` once both are NFKC-normalized (as Django normalizes
    every username it saves) and compared case-insensitively: ``OPS`` and ``ＯＰＳ`` are ``ops``
    (``tenancy.usernames``, the rule template owners are read by too)."""
    return accounts_named(username)


def user_by_username(username: str):
    """The account ``username`` names under the username rule (``_same_username``), or None."""
    return _same_username(username).first()


def username_check(username: str, *, exclude=None) -> str:
    """``username`` as it is stored (NFKC) once no other account has it under the username rule; 409
    ``conflict`` in the API, a field error in forms and commands otherwise. Every path creating or
    renaming an account calls it (Members page, ``create_user``, Django admin)."""
    name = get_user_model().normalize_username(username)
    taken = _same_username(name)
    if exclude is not None and exclude.pk is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        raise AlreadyTaken({"username": "This username is taken."})
    return name


def password_check(password: str, user) -> None:
    """Django's password validators (``AUTH_PASSWORD_VALIDATORS``: length, common passwords, all digits,
    close to the username or email) for ``user``: every path setting a password runs them."""
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc


def user_create(*, username: str, password: str | None = None, email: str = ""):
    """A new account: its username free under the username rule, its password (when given) through the
    validators, else no usable password (a set-password link)."""
    User = get_user_model()
    user = User(username=username_check(username), email=email)
    user.full_clean(exclude=["password"])
    if password:
        password_check(password, user)
        user.set_password(password)
    else:
        user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:  # the same name, created meanwhile (the LOWER(username) index)
        raise AlreadyTaken({"username": "This username is taken."}) from exc
    return user


def user_password_set(*, user, password: str, actor: Actor, via: str) -> None:
    """Set an existing account's password (``create_user --password``), through the validators; recorded
    in each of the person's tenants."""
    password_check(password, user)
    with transaction.atomic():
        user = _lock_person(user)
        user.set_password(password)
        user.save(update_fields=["password"])
        _record_password_set(user, actor, via)


def grantable_roles(actor: Actor) -> set[str]:
    """The roles ``actor`` may put on a key it mints: never more than it holds (an admin holds every
    role, ``runtime`` included; a superuser or command everything)."""
    if actor.is_superuser or Role.ADMIN in actor.roles:
        return set(Role.values)
    return set(actor.roles)


def _lock_minter(minter: ApiKey) -> list[str]:
    """Lock the row of the key minting a key (``FOR NO KEY UPDATE``: a plain reference to it still
    goes through) and return the new key's ``minters``; 409 ``key_revoked`` when it, or a key above it,
    is revoked. The key was authenticated before this transaction began, so a revocation may have
    committed since: this is the check that counts, and the revocation cascade locks each key before it
    reads what that key minted (``api_key_revoke``), so either this mint commits first and the cascade
    revokes the new key, or the cascade commits first and this mint is refused."""
    locked = (
        ApiKey.objects.select_for_update(no_key=True)
        .annotate(minter_revoked=MinterRevoked())
        .filter(pk=minter.pk)
        .first()
    )
    if locked is None or locked.revoked_at is not None or locked.minter_revoked:
        raise Conflict(
            f"The API key minting this one (key:{minter.prefix}) has been revoked, so it cannot mint keys.",
            code="key_revoked",
        )
    return [*locked.minters, locked.prefix]


def api_key_create(
    *, tenant: Tenant, name: str, roles: list[str], bound_to=None, actor: Actor | None = None
) -> tuple[ApiKey, str]:
    """Create a key; returns (key, secret). The secret exists only in this return value.

    A key is never more powerful than whoever mints it: its roles are a subset of the minter's, a key
    bound to an instance mints only keys bound to that instance, and the new key acts for the minter's
    principal (the person at the root of the minting chain), which four eyes and the live role check in
    ``tenancy.authentication`` compare against.

    ``bound_to``: the id of the instance the caller binds the new key to, in this transaction (binding is
    registry's: ``registry.services.api_key_create``, which every caller that binds goes through).
    """
    actor = actor or current_actor()
    # Any member mints keys for themselves (roles within their own); admins may grant any role.
    require_roles(actor, READ_ROLES, "Creating an API key")
    roles = sorted(set(roles))
    beyond = sorted(set(roles) - grantable_roles(actor))
    if beyond:
        raise ValidationError({"roles": f"You cannot grant role(s) you do not hold: {', '.join(beyond)}."})
    bound = actor.bound_instance_id
    if bound is not None and (bound_to is None or str(bound_to) != str(bound)):
        raise ValidationError({"instance": "A key bound to an instance can only mint keys bound to it."})
    if actor.api_key is not None:
        principal, principal_user = actor.api_key.acts_for, actor.api_key.principal_user
    elif actor.user is not None:
        principal, principal_user = actor.ref, actor.user
    else:  # a command: the key stands for itself
        principal, principal_user = "", None
    full, prefix, key_hash = ApiKey.generate()
    with transaction.atomic():
        minters = [] if actor.api_key is None else _lock_minter(actor.api_key)
        key = ApiKey(
            tenant=tenant,
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            roles=roles,
            created_by=actor.ref,
            principal=principal,
            principal_user=principal_user,
            minters=minters,
        )
        key.full_clean()
        with annotate(key, actor=actor, acts_for=key.acts_for):
            key.save()
    return key, full


def api_key_revoke(*, key: ApiKey, actor: Actor | None = None) -> ApiKey:
    """Revoke a key (admins: any key of the tenant; other members: keys acting for them) and, with it,
    every key it minted (transitively): a minted key never outlives the authority it came from. Each
    revocation writes its own record.

    The cascade misses no key minted meanwhile: it locks the key (its conditional UPDATE), then each
    generation of what it minted (``FOR NO KEY UPDATE``, in id order) before it reads the next one. A
    mint locks its minter's row and re-checks it (``_lock_minter``), so a mint in flight either commits
    before the cascade locks its minter (and the next read sees the new key), or waits and is refused.
    Records are appended once every row is locked: appending takes the tenant's chain head, which a mint
    holds while committing, so the cascade must not hold the chain head while it waits for a mint: the
    keys are saved (each save recorded, annotated ``API_KEY_REVOKED``) once every row is locked."""
    actor = actor or current_actor()
    require_roles(actor, READ_ROLES, "Revoking an API key")
    if not actor.has_any((Role.ADMIN,)):
        person = _person(actor)
        if person is None or key.principal_user_id != person.pk:
            raise RoleRequired("Revoking someone else's API key needs the role: admin.")
    with transaction.atomic():
        now = timezone.now()
        locked = ApiKey.objects.select_for_update(no_key=True).filter(pk=key.pk, revoked_at__isnull=True).first()
        if locked is None:
            raise Conflict("This API key is already revoked.", code="already_revoked")
        minted_below, minters = [], [key.prefix]
        while minters:
            minted = list(
                ApiKey.objects.select_for_update(no_key=True)
                .filter(tenant_id=key.tenant_id, created_by__in=[f"key:{p}" for p in minters], revoked_at__isnull=True)
                .order_by("pk")
            )
            minted_below += minted
            minters = [k.prefix for k in minted]
        # Every row is locked: now the saves, each recorded (the key first, then what it minted, in id order).
        revoked = [(locked, {})] + [
            (k, {"minted_by_revoked_key": key.prefix}) for k in sorted(minted_below, key=lambda k: k.pk)
        ]
        for row, context in revoked:
            row.revoked_at = now
            with annotate(row, "API_KEY_REVOKED", actor=actor, **context):
                row.save(update_fields=["revoked_at"])
        key.revoked_at = now
        key.snapshot(["revoked_at"])
    return key
