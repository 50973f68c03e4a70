"""One FilterSet per ledger model, used by the API lists and the UI price page."""

import django_filters

from arm.filters import DateFilter, IntegerFilter, OrderingFilter
from ledger.choices import BudgetPeriod, BudgetScope
from ledger.models import Budget, BudgetAlert, Price
from registry.filtersets import SearchFilterSet


class PriceFilterSet(SearchFilterSet):
    search_fields = ("provider", "model")
    provider = django_filters.CharFilter()
    model = django_filters.CharFilter()
    ordering = OrderingFilter(fields=("provider", "model", "effective_from", "created_at"))

    class Meta:
        model = Price
        fields = ["provider", "model"]


class BudgetFilterSet(SearchFilterSet):
    scope = django_filters.ChoiceFilter(choices=BudgetScope.choices)
    period = django_filters.ChoiceFilter(choices=BudgetPeriod.choices)
    ordering = OrderingFilter(fields=("name", "amount_usd", "created_at", "updated_at"))

    class Meta:
        model = Budget
        fields = ["scope", "period", "template"]


class BudgetAlertFilterSet(django_filters.FilterSet):
    period_start = DateFilter()
    threshold = IntegerFilter()

    class Meta:
        model = BudgetAlert
        fields = ["period_start", "threshold"]
