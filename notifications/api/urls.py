from rest_framework.routers import SimpleRouter

from notifications.api import views

router = SimpleRouter(trailing_slash=True)
router.register("notification-endpoints", views.EndpointViewSet, basename="notification-endpoint")
router.register("notification-deliveries", views.DeliveryViewSet, basename="notification-delivery")

urlpatterns = [*router.urls]
