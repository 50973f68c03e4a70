"""One FilterSet per ledger model, used by the API lists and the UI price page."""

import django_filters

from arm.filters import DateFilter, IntegerFilter, IsoDateTimeFilter, MultipleChoiceFilter, OrderingFilter, UUIDFilter
from ledger.choices import BudgetPeriod, BudgetScope, CostSource, UsageSource
from ledger.models import Budget, BudgetAlert, Price, UsageEntry
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


class UsageEntryFilterSet(SearchFilterSet):
    """The ledger's entries, cursor-paginated newest first (``occurred_at``), so it takes no ``ordering``.
    ``provider`` matches ignoring case (entries stored before providers were lowercased keep theirs)."""

    search_fields = ("model", "tool_name")
    instance = UUIDFilter(field_name="instance_id")
    template = UUIDFilter(field_name="template_id")
    decision = UUIDFilter(field_name="decision_id")
    provider = django_filters.CharFilter(lookup_expr="iexact")
    model = django_filters.CharFilter()
    cost_source = MultipleChoiceFilter(choices=CostSource.choices)
    source = MultipleChoiceFilter(choices=UsageSource.choices)
    since = IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = UsageEntry
        fields = []
