"""Demo usage for ``seed_demo``: the shipped list prices and a price change announced for later, 60 days
of model calls for each demo tenant's instances and a few budgets, all through the ledger's own services
(``prices_load``, ``price_create``, ``budget_create``, ``usage_ingest`` in batches of 1,000), so rollups,
spend counters, budget alerts and change records are exactly what real runtimes would have produced.

The story the Cost page tells: weekdays busy and weekends quiet; OpenAI agents mix gpt-4.1 with
gpt-4.1-mini, Anthropic ones claude-sonnet-4 with claude-haiku-4-5; the busiest template grows from
about a third of its volume to nearly twice it over the 60 days; the tenant's monthly budget is past
80 % this month and the growing template's budget is forecast to run out before the month ends.
Deterministic (a seeded random generator) and idempotent (a tenant that already has usage is left as is).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from arm.demo_ids import demo_id
from ledger import ingest
from ledger.budgets import budget_create
from ledger.choices import BudgetPeriod, BudgetScope
from ledger.forecast import month_bounds
from ledger.models import Budget, Price, UsageEntry
from ledger.prices import price_create, prices_load
from registry.choices import InstanceState
from tenancy.context import Actor

DAYS = 60
CALLS_PER_DAY = 7  # per instance on a weekday, before trend and jitter
WEEKEND_SHARE = 0.3
MIXES = {
    "openai": (("openai", "gpt-4.1", 0.65), ("openai", "gpt-4.1-mini", 0.35)),
    "anthropic": (("anthropic", "claude-sonnet-4", 0.6), ("anthropic", "claude-haiku-4-5", 0.4)),
}
PRICES_FILE = Path(settings.BASE_DIR) / "fixtures" / "prices.json"
BATCH = ingest.MAX_ENTRIES_PER_BATCH
ANNOUNCED_PRICE_DATE = date(2027, 7, 1)


def _mix(instance) -> tuple:
    provider = (instance.version.genome.get("model_config") or {}).get("provider", "openai")
    return MIXES.get(provider, MIXES["openai"])


def _plan(tenant, instances, now: datetime, rng: random.Random) -> tuple[list[dict], object]:
    """The entries to ingest, oldest first, and the template whose volume grows."""
    by_template = Counter(i.version.template_id for i in instances)
    growing = max(sorted(by_template, key=str), key=lambda t: by_template[t]) if by_template else None
    today = now.date()
    entries = []
    for back in range(DAYS - 1, -1, -1):
        day = today - timedelta(days=back)
        progress = (DAYS - 1 - back) / (DAYS - 1)
        weekday = 1.0 if day.weekday() < 5 else WEEKEND_SHARE
        for instance in instances:
            trend = 0.35 + 1.55 * progress if instance.version.template_id == growing else 1.0
            calls = round(CALLS_PER_DAY * weekday * trend * rng.uniform(0.7, 1.3))
            mix = _mix(instance)
            for n in range(calls):
                hour = rng.randint(6, 21) if weekday == 1.0 else rng.randint(0, 23)
                occurred = datetime(
                    day.year, day.month, day.day, hour, rng.randint(0, 59), rng.randint(0, 59), tzinfo=UTC
                )
                if occurred >= now:
                    continue
                provider, model, _ = rng.choices(mix, weights=[w for _, _, w in mix])[0]
                small = model.endswith(("mini", "haiku-4-5"))
                entries.append(
                    {
                        "instance": str(instance.pk),
                        "occurred_at": occurred.isoformat().replace("+00:00", "Z"),
                        "provider": provider,
                        "model": model,
                        "input_tokens": rng.randint(12_000, 48_000) if not small else rng.randint(4_000, 16_000),
                        "output_tokens": rng.randint(800, 3_200) if not small else rng.randint(300, 1_200),
                        "idempotency_key": f"demo-{instance.pk}-{day.isoformat()}-{n}",
                    }
                )
    entries.sort(key=lambda e: e["occurred_at"])
    return entries, growing


def _priced(entry: dict, prices: dict) -> Decimal:
    price = prices.get((entry["provider"], entry["model"]))
    return price.cost(entry["input_tokens"], entry["output_tokens"]) if price else Decimal(0)


def seed_ledger_demo(tenant, instances: list) -> dict:
    """Prices, budgets and 60 days of usage for ``tenant`` (nothing when it already has usage)."""
    if UsageEntry.objects.filter(tenant=tenant).exists():
        return {"entries": 0}
    system = Actor.system("system:seed_demo")
    prices_load(tenant=tenant, rows=json.loads(PRICES_FILE.read_text()), actor=system)
    # A price change announced for later: the row the API reference's price examples edit and remove.
    price_create(
        tenant=tenant,
        actor=system,
        pk=demo_id("price", f"openai/gpt-4.1/{ANNOUNCED_PRICE_DATE}", tenant.slug),
        provider="openai",
        model="gpt-4.1",
        input_usd_per_mtok=Decimal("1.80"),
        cached_input_usd_per_mtok=Decimal("0.45"),
        output_usd_per_mtok=Decimal("7.20"),
        effective_from=ANNOUNCED_PRICE_DATE,
    )
    prices = {(p.provider, p.model): p for p in Price.objects.filter(tenant=tenant)}
    live = [
        i
        for i in sorted(instances, key=lambda i: i.name)
        if i.state not in (InstanceState.RETIRED, InstanceState.PROVISIONING)
    ]
    now = timezone.now()
    rng = random.Random(f"arm-demo-ledger-{tenant.slug}")
    entries, growing = _plan(tenant, live, now, rng)

    # Budgets first, so crossing their thresholds raises alerts during ingestion as it would live.
    month_start, _ = month_bounds(now.date())
    this_month = [e for e in entries if e["occurred_at"] >= month_start.isoformat()]
    tenant_mtd = sum((_priced(e, prices) for e in this_month), Decimal(0))
    by_instance = {str(i.pk): i for i in live}
    growing_mtd = sum(
        (_priced(e, prices) for e in this_month if by_instance[e["instance"]].version.template_id == growing),
        Decimal(0),
    )
    budgets = []
    if tenant_mtd > 0:
        budgets.append(
            {
                "name": "Monthly AI spend",
                "scope": BudgetScope.TENANT,
                "period": BudgetPeriod.MONTHLY,
                "amount_usd": (tenant_mtd / Decimal("0.86")).quantize(Decimal(1)),
                "thresholds": [50, 80, 100],
            }
        )
    if growing is not None and growing_mtd > 0:
        template = next(i.version.template for i in live if i.version.template_id == growing)
        budgets.append(
            {
                "name": f"{template.name} monthly",
                "scope": BudgetScope.TEMPLATE,
                "template": template,
                "period": BudgetPeriod.MONTHLY,
                "amount_usd": (growing_mtd / Decimal("0.6")).quantize(Decimal(1)),
                "thresholds": [50, 80, 100],
            }
        )
    if entries:
        # Twice the average day: the growing template's busiest recent days cross it (alerts per day).
        daily = sum((_priced(e, prices) for e in entries), Decimal(0)) / DAYS * 2
        budgets.append(
            {
                "name": "Daily AI spend",
                "scope": BudgetScope.TENANT,
                "period": BudgetPeriod.DAILY,
                "amount_usd": max(daily.quantize(Decimal(1)), Decimal(1)),
                "thresholds": [80, 100],
            }
        )
    for data in budgets:
        if not Budget.objects.filter(tenant=tenant, name=data["name"]).exists():
            budget_create(tenant=tenant, actor=system, pk=demo_id("budget", data["name"], tenant.slug), **data)

    accepted = 0
    for start in range(0, len(entries), BATCH):
        result = ingest.usage_ingest(tenant=tenant, entries=entries[start : start + BATCH], actor=system)
        accepted += result.accepted
    return {"entries": accepted, "budgets": len(budgets)}
