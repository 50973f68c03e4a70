from rest_framework.routers import SimpleRouter

from registry.api import views

router = SimpleRouter(trailing_slash=True)
router.register("environments", views.EnvironmentViewSet, basename="environment")
router.register("providers", views.ProviderViewSet, basename="provider")
router.register("templates", views.TemplateViewSet, basename="template")
router.register("versions", views.VersionViewSet, basename="version")
router.register("instances", views.InstanceViewSet, basename="instance")

urlpatterns = router.urls
