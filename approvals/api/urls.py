from rest_framework.routers import SimpleRouter

from approvals.api import views

router = SimpleRouter(trailing_slash=True)
router.register("approvals", views.ApprovalViewSet, basename="approval")

urlpatterns = router.urls
