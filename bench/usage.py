"""The benchmark tenant's usage history for the cost reports (``costs_report_90d``): daily rollups
equivalent to ``ENTRIES[scale]`` usage entries over the last ``DAYS`` days, bulk-inserted, and the
template and span rollups derived from them (``derive_rollups``).

Reports read the rollups, never ``UsageEntry``, so what decides their speed is the number of rollup rows
a range covers, not the number of entries behind them. Every live instance reports every day with two
models (the pessimistic shape: nothing collapses), so the fleet scale holds 9,800 instances × 90 days × 2
models ≈ 1.76 million daily rollup rows whose ``entries`` add up to 10,000,000; the template rollup has
a row per day, template, environment and model (about 53,000), the span rollup 8 levels of blocks per
instance. The entries themselves are not inserted (ingestion has its own benchmark); nor are spend
counters.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from ledger.models import MAX_SPAN_LEVEL, ROLLUP_EPOCH, DailyRollup, InstanceSpanRollup, TemplateDayRollup
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
    derive_rollups(tenant.pk)
    with connection.cursor() as cursor:
        for model in (DailyRollup, TemplateDayRollup, InstanceSpanRollup):
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    log(f"usage rollups: {inserted} rows standing for {entries:,} entries ({time.monotonic() - started:.0f} s)")
    return inserted


SUMS = "SUM(entries), SUM(input_tokens), SUM(output_tokens), SUM(cost_usd)"
SUM_COLUMNS = "entries, input_tokens, output_tokens, cost_usd"


def derive_rollups(tenant_id) -> None:
    """Fill the template and span rollups from the tenant's daily rollups with the sums ingestion would
    have upserted (``ledger.ingest._add_to_rollups``), in SQL: the same derivation as migration
    ``ledger.0004`` does for existing data."""
    epoch = ROLLUP_EPOCH.isoformat()
    tenant = tenant_id if connection.features.has_native_uuid_field else tenant_id.hex
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TemplateDayRollup._meta.db_table} "
            f"(tenant_id, day, template_id, environment_id, provider, model, {SUM_COLUMNS}) "
            f"SELECT tenant_id, day, template_id, environment_id, provider, model, {SUMS} "
            f"FROM {DailyRollup._meta.db_table} WHERE tenant_id = %s "
            "GROUP BY tenant_id, day, template_id, environment_id, provider, model",
            [tenant],
        )
        for level in range(MAX_SPAN_LEVEL + 1):
            if connection.vendor == "postgresql":
                start = f"(day - ((day - DATE '{epoch}') %% {1 << level}))"
            else:
                start = (
                    f"date(day, '-' || (CAST(julianday(day) - julianday('{epoch}') AS INTEGER) %% {1 << level})"
                    " || ' days')"
                )
            cursor.execute(
                f"INSERT INTO {InstanceSpanRollup._meta.db_table} "
                f"(tenant_id, level, start, instance_id, version_id, template_id, environment_id, {SUM_COLUMNS}) "
                f"SELECT tenant_id, {level}, {start}, instance_id, version_id, template_id, environment_id, {SUMS} "
                f"FROM {DailyRollup._meta.db_table} WHERE tenant_id = %s "
                f"GROUP BY tenant_id, {start}, instance_id, version_id, template_id, environment_id",
                [tenant],
            )
