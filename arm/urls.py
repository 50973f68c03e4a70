"""URL map: UI at /, Django admin at /admin/, REST API at /api/v1/, OpenAPI at /api/schema/ + /api/docs/."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from arm import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health/", views.health, name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("registry.api.urls")),
    path("api/v1/", include("audit.api.urls")),
    path("api/v1/", include("approvals.api.urls")),
    path("api/v1/", include("policies.api.urls")),
    path("api/v1/", include("arm.api_urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("arm.ui_urls")),
]

handler400 = "arm.views.bad_request"
handler403 = "arm.views.permission_denied"
handler404 = "arm.views.page_not_found"
handler500 = "arm.views.server_error"
