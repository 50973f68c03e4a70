from rest_framework.routers import SimpleRouter

from audit.api.views import ChangeRecordViewSet

router = SimpleRouter(trailing_slash=True)
router.register("audit", ChangeRecordViewSet, basename="audit")

urlpatterns = router.urls
