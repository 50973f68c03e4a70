"""People pages: the members of a tenant (tenant admins), each person's own API keys (any member), and the
set-password page a one-time link opens (no mail: an admin hands the link over)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from arm.errors import AlreadyTaken, DomainError
from arm.ui import StyledForm, apply_service_errors, error_message, paginate
from tenancy import services
from tenancy.choices import MEMBER_ROLES, READ_ROLES, Role
from tenancy.models import ApiKey, Membership
from tenancy.pages import tenant_page
from tenancy.scoping import scoped, scoped_get
from tenancy.selectors import prime_actors

ADMIN = (Role.ADMIN,)
MEMBER_ROLE_CHOICES = [(value, label) for value, label in Role.choices if value in MEMBER_ROLES]
ROLE_HELP = {
    Role.VIEWER: "reads everything in the tenant",
    Role.OPERATOR: "templates, versions, instances, transitions",
    Role.APPROVER: "approves versions and tool calls (never their own)",
    Role.COMPLIANCE: "policies",
    Role.ADMIN: "everything, including people and API keys",
}


def _no_store(response):
    response["Cache-Control"] = "no-store, private"
    return response


# ---------------------------------------------------------------- members (tenant admins)


EXISTING = "existing"


class MemberAddForm(StyledForm, forms.Form):
    """A new account (signing in by link or initial password), or an ARM account someone already has:
    the admin says which, so a taken name is never silently read as someone else's account."""

    username = forms.CharField(max_length=150, help_text="What they type to sign in.")
    email = forms.EmailField(required=False)
    roles = forms.MultipleChoiceField(choices=MEMBER_ROLE_CHOICES, widget=forms.CheckboxSelectMultiple)
    sign_in = forms.ChoiceField(
        choices=[
            ("link", "Generate a one-time set-password link (shown once, here)"),
            ("password", "Set an initial password now"),
            (EXISTING, "They already have an ARM account: add it by its username (they keep their password)"),
        ],
        initial="link",
        widget=forms.RadioSelect,
        label="How they sign in",
    )
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        label="Initial password",
        help_text="Only with “Set an initial password”. Checked by the password rules (length, not common, …).",
    )

    def clean(self):
        data = super().clean()
        if data.get("sign_in") == "password" and not data.get("password"):
            self.add_error("password", "Give an initial password, or choose the set-password link.")
        if data.get("sign_in") == EXISTING:
            if data.get("email"):
                self.add_error("email", "Their account keeps its own email: leave this empty.")
            if data.get("password"):
                self.add_error("password", "Their account keeps its own password: leave this empty.")
        return data


class MemberRolesForm(forms.Form):
    roles = forms.MultipleChoiceField(choices=MEMBER_ROLE_CHOICES, widget=forms.CheckboxSelectMultiple)


def _members_context(request) -> dict:
    tenant, actor = request.arm_tenant, request.arm_actor
    qs = Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__username")
    page = paginate(request, qs)
    rows = list(page.object_list)
    blockers = services.account_blockers_for(tenant=tenant, users=[m.user for m in rows], actor=actor)
    for m in rows:
        m.account_blocker = blockers.get(m.user_id, "")
        m.is_me = m.user_id == request.user.pk
    own = (
        next((m for m in rows if m.is_me), None) or Membership.objects.filter(tenant=tenant, user=request.user).first()
    )
    pending = None
    if own is not None and Role.APPROVER in own.roles:
        work = services.pending_work_of(tenant=tenant, user=request.user)
        if any(work.values()):
            pending = work
    return {"page": page, "rows": rows, "pending_work": pending, "role_help": ROLE_HELP}


def _members_page(request, *, status=200, **extra):
    response = render(request, "arm/members.html", {**_members_context(request), **extra}, status=status)
    return _no_store(response) if extra.get("link") else response


@tenant_page(roles=ADMIN)
def members(request):
    """The tenant's people: roles, state, last sign-in; add, change roles, remove, deactivate."""
    return _members_page(request)


def _membership(request, pk) -> Membership:
    return scoped_get(Membership.objects.select_related("user", "tenant"), request.arm_tenant, pk)


def _member_invite(request, data) -> tuple[Membership, str | None]:
    """A new account: with an initial password, or with a set-password link (returned, to show once)."""
    use_password = data["sign_in"] == "password"
    membership = services.member_invite(
        tenant=request.arm_tenant,
        username=data["username"],
        email=data["email"],
        roles=list(data["roles"]),
        password=data["password"] if use_password else None,
        actor=request.arm_actor,
    )
    if use_password:
        return membership, None
    return membership, services.password_link_create(
        tenant=request.arm_tenant, user=membership.user, actor=request.arm_actor
    )


@tenant_page(roles=ADMIN)
def member_add(request):
    form = MemberAddForm(request.POST or None)
    context = {"form": form, "title": "Add person", "action": reverse("ui:member_add")}
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        existing = data["sign_in"] == EXISTING
        try:
            if existing:
                membership, link = (
                    services.member_add_existing(
                        tenant=request.arm_tenant,
                        username=data["username"],
                        roles=list(data["roles"]),
                        actor=request.arm_actor,
                    ),
                    None,
                )
            else:
                membership, link = _member_invite(request, data)
        except (ValidationError, DomainError) as exc:
            apply_service_errors(form, exc)
            if isinstance(exc, AlreadyTaken) and not existing:
                form.add_error(
                    "username", "If they already use ARM in another tenant, choose “They already have an ARM account”."
                )
        else:
            name = membership.user.get_username()
            if link is None:
                switcher = f"; {request.arm_tenant.name} is in their tenant switcher now" if existing else ""
                messages.success(request, f"{name} added with roles {', '.join(membership.roles)}{switcher}.")
                url = reverse("ui:members")
                return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
            context.update(added=membership, link=request.build_absolute_uri(link))
            template = "arm/_member_added.html"
            if request.htmx:
                return _no_store(render(request, template, context))
            return _no_store(render(request, "registry/form_page.html", {**context, "form_template": template}))
    if request.htmx:
        return render(request, "arm/_member_form.html", context)
    return render(
        request,
        "registry/form_page.html",
        {**context, "form_template": "arm/_member_form.html", "page_title": "Add person"},
    )


@tenant_page(roles=ADMIN)
def member_edit(request, pk):
    """GET: the person's modal (roles, sign-in link, deactivate, remove). POST: their roles."""
    membership = _membership(request, pk)
    form = MemberRolesForm(request.POST or None, initial={"roles": membership.roles})
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            services.membership_set(
                tenant=request.arm_tenant,
                user=membership.user,
                roles=list(form.cleaned_data["roles"]),
                actor=request.arm_actor,
            )
        except (ValidationError, DomainError) as exc:
            status = getattr(exc, "status", 400)
            messages.error(request, error_message(exc))
            if not request.htmx:
                return _members_page(request, status=status)
            apply_service_errors(form, exc)
        else:
            name = membership.user.get_username()
            membership.refresh_from_db()
            messages.success(request, f"{name} now holds: {', '.join(membership.roles)}.")
            if membership.user_id == request.user.pk and Role.APPROVER in membership.roles:
                work = services.pending_work_of(tenant=request.arm_tenant, user=request.user)
                if any(work.values()):
                    messages.warning(
                        request,
                        "You granted yourself approver while work of yours waits for sign-off "
                        f"({work['candidate_versions']} candidate version(s), {work['pending_approvals']} pending "
                        "approval request(s)). Four eyes still applies: someone else must approve them.",
                    )
            url = reverse("ui:members")
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    blocker = services.account_blockers(tenant=request.arm_tenant, user=membership.user, actor=request.arm_actor)
    context = {
        "membership": membership,
        "person": membership.user,
        "form": form,
        "blocker": blocker,
        "title": membership.user.get_username(),
        "is_me": membership.user_id == request.user.pk,
        "role_help": ROLE_HELP,
    }
    if request.htmx:
        return render(request, "arm/_member_edit.html", context, status=status)
    return render(
        request,
        "registry/form_page.html",
        {**context, "form_template": "arm/_member_edit.html", "page_title": context["title"]},
        status=status,
    )


def _member_action(request, pk, action, done: str):
    membership = _membership(request, pk)
    try:
        action(membership)
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_message(exc))
        return _members_page(request, status=getattr(exc, "status", 400))
    messages.success(request, done.format(name=membership.user.get_username()))
    return redirect("ui:members")


@tenant_page(roles=ADMIN)
@require_POST
def member_remove(request, pk):
    return _member_action(
        request,
        pk,
        lambda m: services.membership_remove(tenant=request.arm_tenant, membership=m, actor=request.arm_actor),
        "{name} removed from this tenant; their keys here no longer authenticate.",
    )


@tenant_page(roles=ADMIN)
@require_POST
def member_deactivate(request, pk):
    return _member_action(
        request,
        pk,
        lambda m: services.user_deactivate(tenant=request.arm_tenant, user=m.user, actor=request.arm_actor),
        "{name} deactivated: they cannot sign in and their keys no longer authenticate.",
    )


@tenant_page(roles=ADMIN)
@require_POST
def member_reactivate(request, pk):
    return _member_action(
        request,
        pk,
        lambda m: services.user_reactivate(tenant=request.arm_tenant, user=m.user, actor=request.arm_actor),
        "{name} reactivated.",
    )


@tenant_page(roles=ADMIN)
@require_POST
def member_password_link(request, pk):
    """A one-time set-password link, shown once on the members page (never stored, never cached)."""
    membership = _membership(request, pk)
    try:
        path = services.password_link_create(tenant=request.arm_tenant, user=membership.user, actor=request.arm_actor)
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_message(exc))
        return _members_page(request, status=getattr(exc, "status", 400))
    return _members_page(request, link=request.build_absolute_uri(path), link_for=membership.user)


# ---------------------------------------------------------------- my API keys (any member)


class MyKeyForm(StyledForm, forms.Form):
    name = forms.CharField(max_length=200, help_text="What uses it, e.g. my laptop CLI or CI for my repo.")
    roles = forms.MultipleChoiceField(
        choices=[], widget=forms.CheckboxSelectMultiple, help_text="At most the roles you hold here."
    )

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        grantable = services.grantable_roles(actor)
        self.fields["roles"].choices = [(v, label) for v, label in Role.choices if v in grantable]


def _my_keys_page(request, form, *, new_key=None, secret=None):
    keys = list(
        scoped(ApiKey.objects.filter(principal_user=request.user), request.arm_tenant).order_by("-created_at")[:200]
    )
    prime_actors(request, (k.created_by for k in keys))
    response = render(request, "arm/my_keys.html", {"form": form, "keys": keys, "new_key": new_key, "secret": secret})
    return _no_store(response) if secret else response


@tenant_page(roles=READ_ROLES)
def my_keys(request):
    """Any member mints keys that act for them, with roles within their own; the secret is shown once."""
    form = MyKeyForm(request.POST or None, actor=request.arm_actor)
    if request.method == "POST" and form.is_valid():
        try:
            key, secret = services.api_key_create(
                tenant=request.arm_tenant,
                name=form.cleaned_data["name"],
                roles=list(form.cleaned_data["roles"]),
                actor=request.arm_actor,
            )
        except (ValidationError, DomainError) as exc:
            apply_service_errors(form, exc)
        else:
            return _my_keys_page(request, MyKeyForm(actor=request.arm_actor), new_key=key, secret=secret)
    return _my_keys_page(request, form)


@tenant_page(roles=READ_ROLES)
@require_POST
def my_key_revoke(request, pk):
    key = scoped_get(
        ApiKey.objects.filter(principal_user=request.user).select_related("tenant"), request.arm_tenant, pk
    )
    try:
        services.api_key_revoke(key=key, actor=request.arm_actor)
    except (ValidationError, DomainError) as exc:
        messages.error(request, error_message(exc))
    else:
        messages.success(request, f"Key {key.name} ({key.prefix}) revoked: it no longer authenticates.")
    return redirect("ui:my_keys")


# ---------------------------------------------------------------- set-password link (public)


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """Django's password-reset confirmation, themed and without mail: the token in the link an admin
    handed over (spent once the password is set, or once a newer link is made). The new password goes
    through Django's password validators (``SetPasswordForm``). Never cached; records PASSWORD_SET in the
    person's tenants."""

    template_name = "registration/set_password.html"
    success_url = reverse_lazy("login")
    reset_url_token = "set-password"
    post_reset_login = False
    token_generator = services.link_tokens  # only the latest link made for the person works

    def dispatch(self, *args, **kwargs):
        return _no_store(super().dispatch(*args, **kwargs))

    def get_user(self, uidb64):
        user = super().get_user(uidb64)
        return user if user is not None and user.is_active else None

    def form_valid(self, form):
        response = super().form_valid(form)
        services.password_set_recorded(user=form.user)
        messages.success(self.request, "Password set. Sign in with it now.")
        return response


set_password = never_cache(SetPasswordView.as_view())
