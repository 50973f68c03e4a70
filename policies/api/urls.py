from django.urls import path
from rest_framework.routers import SimpleRouter

from policies.api import views

router = SimpleRouter(trailing_slash=True)
router.register("policies", views.PolicyViewSet, basename="policy")
router.register("decisions", views.DecisionViewSet, basename="decision")

urlpatterns = [
    path("policy/evaluate/", views.PolicyEvaluateView.as_view(), name="policy-evaluate"),
    path("runtime/context/", views.RuntimeContextView.as_view(), name="runtime-context"),
    *router.urls,
]
