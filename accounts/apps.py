from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    """Identity and access, as operators manage them: tenants, members and their roles, API keys (UI, API,
    admin and commands), sign-in and its throttling. Its models (Tenant, Membership, ApiKey) live in the
    bottom layer ``arm``, which authenticates every request; this app holds what changes them and records
    those changes (it sits above ``audit`` and ``registry``: a key may be bound to an instance)."""

    name = "accounts"
    verbose_name = "ARM accounts"

    def ready(self) -> None:
        from accounts import login_throttle  # noqa: F401 - sign-in audit receivers


class ArmAdminConfig(admin_apps.AdminConfig):
    """Django admin (in ``INSTALLED_APPS`` in its place) with ARM's site, ``accounts.admin_site``: the
    documented way to replace the default site, so ``admin.site`` everywhere is ARM's."""

    default = False  # not the default config of ``accounts``
    default_site = "accounts.admin_site.ArmAdminSite"
