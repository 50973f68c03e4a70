from django.urls import path
from rest_framework.routers import SimpleRouter

from registry.api import keys, views
from registry.api.callbacks import EvaluationCallbackView

router = SimpleRouter(trailing_slash=True)
router.register("environments", views.EnvironmentViewSet, basename="environment")
router.register("providers", views.ProviderViewSet, basename="provider")
router.register("templates", views.TemplateViewSet, basename="template")
router.register("versions", views.VersionViewSet, basename="version")
# /instances/ is served by policies.api.instances (registry's viewset with the writes that bind a policy).
# Tenancy's key API with POST, which may bind the key to an instance (registry.InstanceKey).
router.register("api-keys", keys.ApiKeyViewSet, basename="api-key")

urlpatterns = [
    *router.urls,
    # The signed token is the credential (registry.evaluation_requests); handed out by evaluation.requested.
    path("evaluation-callbacks/<str:token>/", EvaluationCallbackView.as_view(), name="evaluation-callback"),
]
