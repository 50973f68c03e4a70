from rest_framework.routers import SimpleRouter

from tenancy.api.views import ApiKeyViewSet

router = SimpleRouter(trailing_slash=True)
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [*router.urls]
