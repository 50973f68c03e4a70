"""Factories and builders for the ledger tests."""

from datetime import date
from decimal import Decimal

import factory
from django.utils import timezone

from ledger.choices import BudgetPeriod, BudgetScope
from ledger.models import Budget, BudgetAlert, Price


class PriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Price

    tenant = None
    provider = "openai"
    model = factory.Sequence(lambda n: f"model-{n}")
    input_usd_per_mtok = Decimal("2.000000")
    output_usd_per_mtok = Decimal("8.000000")
    effective_from = date(2025, 1, 1)
    created_by = "user:factory"


class BudgetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Budget

    tenant = None
    name = factory.Sequence(lambda n: f"budget-{n}")
    scope = BudgetScope.TENANT
    period = BudgetPeriod.MONTHLY
    amount_usd = Decimal("100.0000")
    thresholds = factory.LazyFunction(lambda: [50, 80, 100])
    created_by = "user:factory"


class BudgetAlertFactory(factory.django.DjangoModelFactory):
    """An alert as ``budgets_evaluate`` raises it (the budget's tenant, its amount at the time)."""

    class Meta:
        model = BudgetAlert

    budget = factory.SubFactory(BudgetFactory)
    tenant = factory.SelfAttribute("budget.tenant")
    period_start = date(2026, 11, 1)
    threshold = 80
    spend_usd = Decimal("85.000000")
    amount_usd = factory.SelfAttribute("budget.amount_usd")
    crossed_at = factory.LazyFunction(timezone.now)


def entry(instance, key: str, *, at="2026-11-20T10:00:00Z", **overrides) -> dict:
    """One usage entry as the API takes it."""
    body = {
        "instance": str(instance.pk),
        "occurred_at": at,
        "provider": "openai",
        "model": "gpt-4.1",
        "input_tokens": 1000,
        "output_tokens": 500,
        "idempotency_key": key,
    }
    body.update(overrides)
    return body
