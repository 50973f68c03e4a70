"""URL map: UI at /, Django admin at /admin/, REST API at /api/v1/, OpenAPI at /api/schema/ + /api/docs/,
sign-in and sign-out at /accounts/login/ and /accounts/logout/."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from arm import views
from audit import views as audit_views
from ledger.otlp import OtlpTracesView
from tenancy import people

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health/", views.health, name="health"),
    # Public keys of signed audit checkpoints, unauthenticated (README, "Auditors: proving the audit trail").
    path(".well-known/arm-audit-keys.json", audit_views.public_keys, name="audit-public-keys"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Split view: the Swagger UI init script is served as a file (?script), so the CSP needs no inline script.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
    path("api/v1/", include("registry.api.urls")),
    path("api/v1/", include("audit.api.urls")),
    path("api/v1/", include("approvals.api.urls")),
    path("api/v1/", include("policies.api.urls")),
    path("api/v1/", include("tenancy.api.urls")),
    path("api/v1/", include("ledger.api.urls")),
    path("api/v1/", include("ledger.api.costs")),
    path("api/v1/", include("notifications.api.urls")),
    # OTLP/HTTP trace exporters post here (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=<ARM>/otlp/v1/traces).
    path("otlp/v1/traces", OtlpTracesView.as_view(), name="otlp-traces"),
    # Sign-in, sign-out and the set-password page a one-time link opens. ARM sends no mail, so there is no
    # "forgot password" form: a tenant admin makes the link on the Members page (or `manage.py create_user`
    # prints one) and hands it over.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("accounts/set-password/<uidb64>/<token>/", people.set_password, name="set_password"),
    path("", include("config.ui_urls")),
]

handler400 = "arm.views.bad_request"
handler403 = "arm.views.permission_denied"
handler404 = "arm.views.page_not_found"
handler500 = "arm.views.server_error"
