"""Ledger admin, tenant-scoped like every admin: prices and budgets written through the services
(validation, change records); usage entries, daily rollups and budget alerts read-only (the ledger is
append-only, rollups and alerts are written only by ingestion)."""

from django.contrib import admin

from ledger import budgets, prices
from ledger.models import Budget, BudgetAlert, DailyRollup, Price, UsageEntry
from tenancy.admin_mixins import ReadOnlyAdmin, ServiceSavedAdmin, admin_actor


class _TenantChosenOnce:
    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "tenant"] if obj is not None else self.readonly_fields


@admin.register(Price)
class PriceAdmin(_TenantChosenOnce, ServiceSavedAdmin):
    list_display = ["provider", "model", "input_usd_per_mtok", "output_usd_per_mtok", "effective_from", "tenant"]
    list_filter = ["tenant", "provider"]
    search_fields = ["provider", "model"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    fields = ["tenant", *prices.PRICE_FIELDS, *readonly_fields]

    def save_through_service(self, request, obj, data, change):
        data = {f: data[f] for f in prices.PRICE_FIELDS if f in data}
        actor = admin_actor(request, obj.tenant)
        if change:
            return prices.price_update(price=Price.objects.get(pk=obj.pk), actor=actor, **data)
        return prices.price_create(tenant=obj.tenant, actor=actor, **data)

    def delete_through_service(self, request, obj):
        prices.price_delete(price=obj, actor=admin_actor(request, obj.tenant))


@admin.register(Budget)
class BudgetAdmin(_TenantChosenOnce, ServiceSavedAdmin):
    list_display = ["name", "scope", "template", "tag", "period", "amount_usd", "thresholds", "tenant"]
    list_filter = ["tenant", "scope", "period"]
    search_fields = ["name", "tag"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    fields = ["tenant", *budgets.BUDGET_FIELDS, *readonly_fields]
    list_select_related = ["template", "tenant"]

    def save_through_service(self, request, obj, data, change):
        data = {f: data[f] for f in budgets.BUDGET_FIELDS if f in data}
        actor = admin_actor(request, obj.tenant)
        if change:
            return budgets.budget_update(budget=Budget.objects.get(pk=obj.pk), actor=actor, **data)
        return budgets.budget_create(tenant=obj.tenant, actor=actor, **data)

    def delete_through_service(self, request, obj):
        budgets.budget_delete(budget=obj, actor=admin_actor(request, obj.tenant))


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ReadOnlyAdmin):
    list_display = ["crossed_at", "budget", "threshold", "period_start", "spend_usd", "amount_usd", "tenant"]
    list_filter = ["tenant", "threshold"]
    list_select_related = ["budget", "tenant"]


@admin.register(UsageEntry)
class UsageEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "occurred_at",
        "instance",
        "provider",
        "model",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "cost_source",
        "source",
        "tenant",
    ]
    list_filter = ["tenant", "source", "cost_source", "provider"]
    search_fields = ["model", "idempotency_key", "tool_name"]
    list_select_related = ["instance", "tenant"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False  # no COUNT(*) over tens of millions of rows on every page


@admin.register(DailyRollup)
class DailyRollupAdmin(ReadOnlyAdmin):
    list_display = ["day", "instance", "provider", "model", "entries", "input_tokens", "output_tokens", "cost_usd"]
    list_filter = ["tenant", "provider"]
    list_select_related = ["instance", "tenant"]
    date_hierarchy = "day"
