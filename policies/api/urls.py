from django.urls import path
from rest_framework.routers import SimpleRouter

from policies.api import instances, views

router = SimpleRouter(trailing_slash=True)
router.register("policies", views.PolicyViewSet, basename="policy")
router.register("decisions", views.DecisionViewSet, basename="decision")
# Registry's instance API with the writes that bind a policy (policies.api.instances).
router.register("instances", instances.InstanceViewSet, basename="instance")

urlpatterns = [
    path("policy/evaluate/", views.PolicyEvaluateView.as_view(), name="policy-evaluate"),
    path("runtime/context/", views.RuntimeContextView.as_view(), name="runtime-context"),
    *router.urls,
]
