"""The three rollups kept with the entries (ledger.models): each equals the sum of the entries it covers,
the span blocks cover any range exactly once, and a report over any range by instance or version (read
from the blocks) equals the entries of that range. Also the SQL derivation the benchmark builds them with
(the same as migration ledger.0004 runs for existing data)."""

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Sum

from bench.usage import derive_rollups
from ledger import ingest, reports
from ledger.models import (
    MAX_SPAN_LEVEL,
    DailyRollup,
    InstanceSpanRollup,
    TemplateDayRollup,
    UsageEntry,
    span_blocks,
    span_start,
)
from tenancy.context import Actor
from tests.factories import EnvironmentFactory, InstanceFactory, TemplateFactory, VersionFactory

pytestmark = pytest.mark.django_db
D = Decimal
TODAY = datetime.now(UTC).date()


@pytest.mark.parametrize("seed", range(5))
def test_span_blocks_cover_a_range_exactly_with_aligned_blocks(seed):
    rng = random.Random(seed)
    for _ in range(200):
        since = date(2026, 1, 1) + timedelta(days=rng.randrange(400))
        until = since + timedelta(days=rng.randrange(366))
        blocks = span_blocks(since, until)
        day = since
        for level, start in blocks:
            assert start == day and span_start(start, level) == start and 0 <= level <= MAX_SPAN_LEVEL
            day += timedelta(days=1 << level)
        assert day == until + timedelta(days=1)
        assert len(blocks) <= 2 * (MAX_SPAN_LEVEL + 1) + (until - since).days // (1 << MAX_SPAN_LEVEL)
    # 90 days read as a handful of blocks, not 90
    assert len(span_blocks(TODAY - timedelta(days=89), TODAY)) <= 12


@pytest.fixture
def usage(tenant):
    """Entries over 70 days for four instances of two templates in two environments."""
    prod = EnvironmentFactory(tenant=tenant, name="prod", tier="prod")
    dev = EnvironmentFactory(tenant=tenant, name="dev")
    support = TemplateFactory(tenant=tenant, name="support", tags=["cs", "tier-1"], owners=["ana@example.com"])
    billing = TemplateFactory(tenant=tenant, name="billing", tags=[], owners=[])
    instances = [
        InstanceFactory(version=VersionFactory(template=support), environment=prod, name="s1"),
        InstanceFactory(version=VersionFactory(template=support), environment=dev, name="s2"),
        InstanceFactory(version=VersionFactory(template=billing), environment=prod, name="b1"),
        InstanceFactory(version=VersionFactory(template=billing), environment=prod, name="b2"),
    ]
    rng = random.Random(11)
    entries = [
        {
            "instance": str(rng.choice(instances).pk),
            "occurred_at": datetime.combine(
                TODAY - timedelta(days=rng.randrange(70)), datetime.min.time(), tzinfo=UTC
            ).isoformat(),
            "provider": "openai",
            "model": rng.choice(["gpt-4.1", "gpt-4.1-mini"]),
            "input_tokens": rng.randrange(5000),
            "output_tokens": rng.randrange(500),
            "cost_usd": f"{rng.randrange(1, 10_000) / 100:.2f}",
            "idempotency_key": f"k{i}",
        }
        for i in range(600)
    ]
    for i in range(0, len(entries), 150):  # several batches: rows are incremented, not only inserted
        result = ingest.usage_ingest(tenant=tenant, entries=entries[i : i + 150], actor=Actor.system())
        assert result.accepted == 150
    return instances


def _entry_sums(group_by, **filters) -> dict:
    rows = (
        UsageEntry.objects.filter(**filters)
        .values(*group_by)
        .annotate(n=Count("id"), tin=Sum("input_tokens"), tout=Sum("output_tokens"), cost=Sum("cost_usd"))
    )
    return {tuple(r[k] for k in group_by): (r["n"], r["tin"], r["tout"], r["cost"]) for r in rows}


def _rows(qs, key) -> dict:
    out = defaultdict(lambda: [0, 0, 0, D(0)])
    for r in qs:
        acc = out[key(r)]
        acc[0] += r.entries
        acc[1] += r.input_tokens
        acc[2] += r.output_tokens
        acc[3] += r.cost_usd
    return {k: tuple(v) for k, v in out.items()}


def test_template_rollup_equals_the_entries_per_day_template_environment_and_model(usage):
    expected = _entry_sums(("occurred_at__date", "template_id", "environment_id", "provider", "model"))
    got = _rows(
        TemplateDayRollup.objects.all(), lambda r: (r.day, r.template_id, r.environment_id, r.provider, r.model)
    )
    assert got == expected
    assert TemplateDayRollup.objects.count() == len(expected)  # one row per group


def test_every_span_level_equals_the_entries_of_its_blocks(usage):
    days = _entry_sums(("occurred_at__date", "instance_id"))
    for level in range(MAX_SPAN_LEVEL + 1):
        expected = defaultdict(lambda: [0, 0, 0, D(0)])
        for (day, instance_id), sums in days.items():
            acc = expected[(span_start(day, level), instance_id)]
            for i, v in enumerate(sums):
                acc[i] += v
        got = _rows(InstanceSpanRollup.objects.filter(level=level), lambda r: (r.start, r.instance_id))
        assert got == {k: tuple(v) for k, v in expected.items()}, level
    assert InstanceSpanRollup.objects.filter(level=0).count() == len(days)
    span = InstanceSpanRollup.objects.first()
    assert (span.version_id, span.template_id, span.environment_id) == (
        span.instance.version_id,
        span.instance.version.template_id,
        span.instance.environment_id,
    )


@pytest.mark.parametrize("group_by", ["instance", "version"])
def test_reports_by_instance_or_version_over_any_range_equal_the_entries(usage, tenant, group_by):
    rng = random.Random(group_by)
    for _ in range(12):
        since = TODAY - timedelta(days=rng.randrange(75))
        until = min(TODAY, since + timedelta(days=rng.randrange(80)))
        query = reports.parse_cost_query(
            tenant, {"group_by": group_by, "since": since.isoformat(), "until": until.isoformat()}, today=TODAY
        )
        report = reports.cost_report(tenant, query)
        expected = _entry_sums((f"{group_by}_id",), occurred_at__date__gte=since, occurred_at__date__lte=until)
        assert {g.key: (g.entries, g.cost_usd) for g in report.groups} == {
            str(k[0]): (v[0], v[3]) for k, v in expected.items()
        }
        assert report.total_usd == sum((v[3] for v in expected.values()), D(0))
        for g in report.groups:  # the daily series add up to the block totals
            assert sum(g.series, D(0)) == g.cost_usd


def test_derivation_in_sql_matches_what_ingestion_upserts(usage, tenant):
    template_rows = {
        (r.day, r.template_id, r.environment_id, r.provider, r.model): (r.entries, r.cost_usd)
        for r in TemplateDayRollup.objects.all()
    }
    spans = {(r.level, r.start, r.instance_id): (r.entries, r.cost_usd) for r in InstanceSpanRollup.objects.all()}
    TemplateDayRollup.objects.all().delete()
    InstanceSpanRollup.objects.all().delete()
    derive_rollups(tenant.pk)
    assert {
        (r.day, r.template_id, r.environment_id, r.provider, r.model): (r.entries, r.cost_usd)
        for r in TemplateDayRollup.objects.all()
    } == template_rows
    assert {
        (r.level, r.start, r.instance_id): (r.entries, r.cost_usd) for r in InstanceSpanRollup.objects.all()
    } == spans
    assert DailyRollup.objects.aggregate(c=Sum("cost_usd"))["c"] == UsageEntry.objects.aggregate(c=Sum("cost_usd"))["c"]


@pytest.mark.parametrize(("group_by", "spread"), [("tag", {"cs", "tier-1"}), ("owner", {"ana@example.com"})])
def test_tag_and_owner_series_are_spread_over_each_templates_list(usage, tenant, group_by, spread):
    """Spread in SQL (json_each / jsonb_array_elements_text): each of support's tags or owners gets all of
    its spend, day by day; billing, with none, is the '' group."""
    since = TODAY - timedelta(days=69)
    for period in ("day", "week", "month"):
        query = reports.parse_cost_query(
            tenant, {"group_by": group_by, "period": period, "since": since.isoformat()}, today=TODAY
        )
        report = reports.cost_report(tenant, query)
        by_template = _entry_sums(("template__name",), occurred_at__date__gte=since)
        expected = {name: by_template[("support",)][3] for name in spread} | {"": by_template[("billing",)][3]}
        assert {g.key: g.cost_usd for g in report.groups} == expected
        for g in report.groups:
            assert sum(g.series, D(0)) == g.cost_usd, (period, g.key)
        support_days = _entry_sums(("occurred_at__date",), template__name="support", occurred_at__date__gte=since)
        tag = next(iter(spread))
        daily = dict(zip(report.buckets, next(g for g in report.groups if g.key == tag).series, strict=True))
        if period == "day":
            assert {d: v for d, v in daily.items() if v} == {k[0]: v[3] for k, v in support_days.items()}


@pytest.mark.parametrize("group_by", ["instance", "version"])
def test_instance_and_version_groups_are_ranked_and_counted_in_sql(usage, tenant, group_by):
    query = reports.CostQuery(group_by, "month", TODAY - timedelta(days=69), TODAY, limit=2)
    report = reports.cost_report(tenant, query)
    sums = {str(k[0]): v for k, v in _entry_sums((f"{group_by}_id",)).items()}
    ranked = sorted(sums, key=lambda key: (-sums[key][3], key))
    assert [(g.key, g.cost_usd, g.entries, g.input_tokens) for g in report.groups] == [
        (key, sums[key][3], sums[key][0], sums[key][1]) for key in ranked[:2]
    ]
    assert report.group_count == len(sums) == 4
    assert report.other_usd == sum(sums[key][3] for key in ranked[2:])


def test_one_span_row_per_block_is_enforced_by_the_database_on_both_databases(usage):
    """The unique constraint carries the ranking's columns on PostgreSQL (INCLUDE) and is the plain unique
    constraint on SQLite, where Django would otherwise create none (``CoveringUniqueConstraint``)."""
    span = InstanceSpanRollup.objects.filter(level=3).first()
    span.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        span.save(force_insert=True)
    # ... so Django's warning that SQLite creates no such constraint (models.W039) does not apply to it.
    constraint = next(c for c in InstanceSpanRollup._meta.constraints if c.name == "span_one_row_per_block")
    assert [e.id for e in constraint._check(InstanceSpanRollup, connection)] == []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'span_one_row_per_block'")
            (definition,) = cursor.fetchone()
        assert "UNIQUE" in definition
        assert "INCLUDE (version_id, template_id, environment_id, cost_usd)" in definition
