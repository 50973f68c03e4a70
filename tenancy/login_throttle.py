"""Sign-in throttling with django-axes: the client address, the 429 lockout page, the audit records of
failed sign-ins and lockouts in the tenants of the targeted account, and the same throttle on every other
form that checks a current password (``check_current_password``: Django admin's password change page;
ARM has no other, the set-password link carries its own one-time token).

Axes counts failures per account and per client address (``AXES_LOCKOUT_PARAMETERS``) in its own tables
(``axes_accessattempt``, ``axes_accessfailurelog``); admins see them in Django admin and clear them with
``manage.py axes_reset`` / ``axes_reset_username <name>`` / ``axes_reset_ip <address>``.
"""

from __future__ import annotations

import logging

from axes.helpers import get_cool_off, get_failure_limit
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.admin.forms import AdminPasswordChangeForm
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.dispatch import receiver
from django.template.response import TemplateResponse

from tenancy.context import Actor
from tenancy.signals import account_event

logger = logging.getLogger(__name__)

# Failed sign-ins are made by whoever typed the password: nobody ARM knows.
ANONYMOUS = Actor(ref="anonymous")


def client_ip(request) -> str | None:
    """The client address axes counts failures against.

    REMOTE_ADDR unless ``ARM_CLIENT_IP_HEADER`` names a header a trusted reverse proxy sets. For a list
    header (X-Forwarded-For) the entry appended by the outermost trusted proxy is used: the
    ``ARM_TRUSTED_PROXY_COUNT``-th from the right, so addresses a client writes into the header itself
    (on the left) are ignored.
    """
    header = settings.ARM_CLIENT_IP_HEADER
    remote = request.META.get("REMOTE_ADDR")
    if not header:
        return remote
    key = "HTTP_" + header.upper().replace("-", "_")
    hops = [part.strip() for part in request.META.get(key, "").split(",") if part.strip()]
    count = max(settings.ARM_TRUSTED_PROXY_COUNT, 1)
    if len(hops) >= count:
        return hops[-count]
    return hops[0] if hops else remote


def lockout_response(request, original_response=None, credentials=None):
    """429 with the themed lockout page (login page and admin login alike) and a Retry-After."""
    cool_off = get_cool_off(request)
    minutes = int(cool_off.total_seconds() // 60) if cool_off else None
    response = TemplateResponse(
        request,
        "registration/locked_out.html",
        {"cooloff_minutes": minutes, "failure_limit": get_failure_limit(request, credentials)},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response.render()


def _memberships(username):
    from tenancy.models import Membership

    if not username:
        return None, []
    user = get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: username}).first()
    if user is None:
        return None, []  # unknown names stay in axes' own log only
    return user, list(Membership.objects.filter(user=user).select_related("tenant"))


def _record(event_type, request, username, payload):
    """One record in each tenant of the account, written by audit's receiver of ``account_event``."""
    user, memberships = _memberships(username)
    for membership in memberships:
        account_event.send(
            sender=type(user),
            tenant=membership.tenant,
            event_type=event_type,
            user=user,
            payload={"username": username, "ip_address": getattr(request, "axes_ip_address", None), **payload},
            actor=ANONYMOUS,
        )


@receiver(user_login_failed, dispatch_uid="arm.audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    """LOGIN_FAILED in each tenant of the account, up to the failure that locks it out.

    Runs after axes' own receiver (INSTALLED_APPS order), which set ``axes_failures_since_start``.
    Attempts refused while already locked out are left to axes' log, so nobody can flood a tenant's audit
    chain by hammering the login form: at most ``AXES_FAILURE_LIMIT`` records per account per cool-off.
    """
    if request is None or not settings.AXES_ENABLED:
        return
    failures = getattr(request, "axes_failures_since_start", None)
    limit = get_failure_limit(request, credentials)
    if failures is not None and failures > limit:
        return
    username = (credentials or {}).get(get_user_model().USERNAME_FIELD)
    try:
        _record("LOGIN_FAILED", request, username, {"failures": failures, "failure_limit": limit})
    except Exception:  # auditing must not turn a refused sign-in into a 500
        logger.exception("could not record LOGIN_FAILED for %r", username)


@receiver(user_locked_out, dispatch_uid="arm.audit_locked_out")
def audit_locked_out(sender, request, username=None, ip_address=None, **kwargs):
    """ACCOUNT_LOCKED_OUT in each tenant of the account, once, when the lockout starts."""
    failures = getattr(request, "axes_failures_since_start", None)
    limit = get_failure_limit(request, None)
    if failures is not None and failures > limit:
        return  # still locked out: recorded when it started
    cool_off = get_cool_off(request)
    try:
        _record(
            "ACCOUNT_LOCKED_OUT",
            request,
            username,
            {
                "failures": failures,
                "failure_limit": limit,
                "cooloff_seconds": int(cool_off.total_seconds()) if cool_off else None,
            },
        )
    except Exception:
        logger.exception("could not record ACCOUNT_LOCKED_OUT for %r", username)


def check_current_password(request, user, password: str) -> bool:
    """Whether ``password`` is ``user``'s current password, checked as a sign-in is (``authenticate``):
    a wrong one counts against the account and the client address like a failed sign-in (and is
    recorded as one), and once they are locked out the check fails whatever the password, and the
    response becomes the 429 lockout page (``AxesMiddleware``)."""
    found = authenticate(request, **{get_user_model().USERNAME_FIELD: user.get_username()}, password=password)
    return found is not None and found.pk == user.pk


class ThrottledPasswordChangeForm(AdminPasswordChangeForm):
    """Django admin's password change form, its current password checked under the sign-in throttle."""

    def __init__(self, user, *args, request, **kwargs):
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        if not check_current_password(self.request, self.user, old_password):
            raise ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


class ThrottledPasswordChangeView(PasswordChangeView):
    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}
