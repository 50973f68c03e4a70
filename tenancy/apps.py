"""Tenancy: who is asking and which tenant's rows they may touch.

Tenants, memberships (a user's roles in one tenant) and API keys; authentication (keys and sessions),
the request's actor and tenant (``tenancy.context``), permissions and roles, tenant scoping for the API,
the UI, the admin and commands; and the people who manage them: the members and keys pages, the key API,
the tenant/user/key commands, sign-in and its throttling.

Why the app label is ``arm`` (docs/decisions.md, "The tenancy app keeps the label arm"): these models lived
in the ``arm`` package until the package was split into this app and the plumbing left in ``arm``. An app
label is stored data: the tables (``arm_tenant``, ``arm_membership``, ``arm_apikey``), the migration history
(``django_migrations`` rows ``arm.000N``), content types and their permissions, admin URLs
(``/admin/arm/...``) and every other app's migrations (``to="arm.tenant"``). Keeping the label moves the
code and leaves all of that untouched: no table rename, no state-only migration in every app, no
migration of the existing databases at all. The plumbing package ``arm`` is a library, not an installed
app, so the label is free for this one.
"""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class TenancyConfig(AppConfig):
    name = "tenancy"
    label = "arm"  # see the module docstring: the label names tables, migrations and content types
    verbose_name = "ARM tenancy & identity"

    def ready(self) -> None:
        # The plumbing package is not an app: its deploy checks are registered by the app every ARM installs.
        from arm import checks  # noqa: F401
        from tenancy import authentication, login_throttle  # noqa: F401 - OpenAPI schemes, sign-in audit receivers


class ArmAdminConfig(admin_apps.AdminConfig):
    """Django admin (in ``INSTALLED_APPS`` in its place) with ARM's site, ``tenancy.admin_site``: the
    documented way to replace the default site, so ``admin.site`` everywhere is ARM's."""

    default = False  # not the default config of ``tenancy``
    default_site = "tenancy.admin_site.ArmAdminSite"
