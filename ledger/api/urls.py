from django.urls import path
from rest_framework.routers import SimpleRouter

from ledger.api import views

router = SimpleRouter(trailing_slash=True)
router.register("prices", views.PriceViewSet, basename="price")
router.register("budgets", views.BudgetViewSet, basename="budget")
router.register("budget-alerts", views.BudgetAlertViewSet, basename="budget-alert")

urlpatterns = [
    path("usage/", views.UsageView.as_view(), name="usage-ingest"),
    *router.urls,
]
