"""The benchmark tenant's usage history for the cost reports (``costs_report_90d``): daily rollups
equivalent to ``ENTRIES[scale]`` usage entries over the last ``DAYS`` days, bulk-inserted.

Reports read ``ledger.DailyRollup`` only, never ``UsageEntry``, so what decides their speed is the number
of rollup rows a range covers, not the number of entries behind them. Every live instance reports every
day with two models (the pessimistic shape for rollups: nothing collapses), so the fleet scale holds
9,800 instances × 90 days × 2 models ≈ 1.76 million rollup rows whose ``entries`` add up to 10,000,000.
The entries themselves are not inserted (ingestion has its own benchmark); nor are spend counters.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from ledger.models import DailyRollup
from registry.choices import InstanceState
from registry.models import AgentInstance

DAYS = 90
ENTRIES = {"small": 200_000, "fleet": 10_000_000}
MODELS = (("openai", "gpt-4.1", Decimal("0.012")), ("openai", "gpt-4.1-mini", Decimal("0.0021")))
BATCH = 10_000


def build_rollups(tenant, scale_name: str, log=print) -> int:
    """Insert the rollups (once: nothing when the tenant already has some). Returns the rows inserted."""
    if DailyRollup.objects.filter(tenant=tenant).exists():
        return 0
    started = time.monotonic()
    instances = list(
        AgentInstance.objects.filter(tenant=tenant)
        .exclude(state=InstanceState.RETIRED)
        .order_by("name")
        .values_list("pk", "version_id", "version__template_id", "environment_id")
    )
    if not instances:
        return 0
    per_row = ENTRIES[scale_name] / (len(instances) * DAYS * len(MODELS))
    rng = random.Random(7)
    today = timezone.now().date()
    inserted = entries = 0
    batch = []
    for d in range(DAYS):
        day = today - timedelta(days=d)
        for pk, version_id, template_id, environment_id in instances:
            for provider, model, unit in MODELS:
                n = max(1, round(per_row * rng.uniform(0.5, 1.5)))
                entries += n
                batch.append(
                    DailyRollup(
                        tenant_id=tenant.pk,
                        day=day,
                        template_id=template_id,
                        version_id=version_id,
                        instance_id=pk,
                        environment_id=environment_id,
                        provider=provider,
                        model=model,
                        entries=n,
                        input_tokens=n * 20_000,
                        output_tokens=n * 1_500,
                        cost_usd=unit * n,
                    )
                )
                if len(batch) >= BATCH:
                    DailyRollup.objects.bulk_create(batch)
                    inserted += len(batch)
                    batch = []
        if d % 10 == 9:
            log(f"usage rollups: {d + 1}/{DAYS} days, {inserted} rows ({time.monotonic() - started:.0f} s)")
    if batch:
        DailyRollup.objects.bulk_create(batch)
        inserted += len(batch)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {DailyRollup._meta.db_table}")
    log(f"usage rollups: {inserted} rows standing for {entries:,} entries ({time.monotonic() - started:.0f} s)")
    return inserted
