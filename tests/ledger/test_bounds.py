"""No ledger sum can overflow its column (SQLite and PostgreSQL): one entry's tokens and cost are
bounded, the rollups' per-instance sums are held by check constraints, money sums over unbounded rows are
wide, and an entry that would pass a bound is refused on its own (``total_out_of_range``) while the rest
of its batch and the tenant's later batches go through."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from audit.choices import EventType
from ledger import ingest
from ledger.models import (
    MAX_COST_USD,
    MAX_ROLLUP_TOKENS,
    MAX_SPAN_COST_USD,
    MAX_SPAN_LEVEL,
    MAX_TOKENS,
    BudgetAlert,
    InstanceSpanRollup,
    TemplateDayRollup,
    UsageEntry,
    span_start,
)
from policies.models import InstanceSpend
from tests.conftest import change_records
from tests.factories import InstanceFactory, VersionFactory
from tests.helpers import member_with, race
from tests.ledger.conftest import USAGE
from tests.ledger.factories import BudgetFactory, entry

D = Decimal
DAY = date(2026, 11, 20)  # the day of tests.ledger.factories.entry


def _span_block(instance, cost: Decimal) -> InstanceSpanRollup:
    """The instance's widest block around DAY, already holding ``cost``."""
    return InstanceSpanRollup.objects.create(
        tenant=instance.tenant,
        level=MAX_SPAN_LEVEL,
        start=span_start(DAY, MAX_SPAN_LEVEL),
        instance=instance,
        version=instance.version,
        template=instance.version.template,
        environment=instance.environment,
        entries=1,
        cost_usd=cost,
    )


def _results(data) -> list[tuple]:
    return [(r["result"], r.get("code"), r.get("field")) for r in data["results"]]


def test_one_entrys_tokens_and_cost_are_bounded(instance, ingest):
    data = ingest(
        [
            entry(instance, "max", input_tokens=MAX_TOKENS, output_tokens=MAX_TOKENS, cost_usd=str(MAX_COST_USD)),
            entry(instance, "tokens", input_tokens=MAX_TOKENS + 1),
            entry(instance, "output", output_tokens=MAX_TOKENS + 1),
            entry(instance, "cost", cost_usd="1000000.000001"),
        ]
    ).json()
    assert _results(data) == [
        ("accepted", None, None),
        ("rejected", "validation_error", "input_tokens"),
        ("rejected", "validation_error", "output_tokens"),
        ("rejected", "validation_error", "cost_usd"),
    ]
    assert data["results"][1]["message"] == "input_tokens must be a whole number from 0 to 1000000000."


@pytest.fixture(params=["read", "each"])
def bound_path(request, monkeypatch):
    """A batch that meets a bound is tried again without the entries its locked read says do not fit; should
    the database still refuse (the read overtaken), each entry is stored on its own. Both paths, alike."""
    if request.param == "each":
        monkeypatch.setattr(ingest, "_fit_bounds", lambda tenant, rows, instances: (rows, {}))
    return request.param


def test_an_entry_past_its_instances_spend_bound_is_refused_alone(tenant, instance, template, ingest, bound_path):
    block = _span_block(instance, MAX_SPAN_COST_USD - 1)
    other = InstanceFactory(version=VersionFactory(template=template))
    batch = [entry(instance, "fits", cost_usd="0.5"), entry(instance, "over", cost_usd="1"), entry(other, "k")]
    data = ingest(batch).json()
    assert _results(data) == [
        ("accepted", None, None),
        ("rejected", "total_out_of_range", "cost_usd"),
        ("accepted", None, None),
    ]
    assert "past 100000000000 USD within 128 days" in data["results"][1]["message"]
    assert sorted(UsageEntry.objects.values_list("idempotency_key", flat=True)) == ["fits", "k"]
    block.refresh_from_db()
    assert block.cost_usd == MAX_SPAN_COST_USD - D("0.5") and block.entries == 2
    day = InstanceSpend.objects.get(instance=instance, period="day", period_start=DAY)
    assert day.actual_usd == D("0.5")
    [record] = change_records(event_type=EventType.USAGE_INGESTED)
    assert (record.payload["accepted"], record.payload["rejected"]) == (2, 1)
    # The instance's later batches: up to the bound exactly, then refused; the tenant's others go on.
    assert ingest([entry(instance, "to-the-bound", cost_usd="0.5")]).json()["accepted"] == 1
    block.refresh_from_db()
    assert block.cost_usd == MAX_SPAN_COST_USD
    data = ingest([entry(instance, "past", cost_usd="0.01"), entry(other, "k2", cost_usd="1")]).json()
    assert _results(data) == [("rejected", "total_out_of_range", "cost_usd"), ("accepted", None, None)]


def test_tokens_past_a_template_days_bound_are_refused_alone(tenant, instance, ingest, bound_path):
    TemplateDayRollup.objects.create(
        tenant=tenant,
        day=DAY,
        template=instance.version.template,
        environment=instance.environment,
        provider="openai",
        model="gpt-4.1",
        entries=1,
        input_tokens=MAX_ROLLUP_TOKENS - 10,
    )
    data = ingest([entry(instance, "fits", input_tokens=10), entry(instance, "over", input_tokens=1)]).json()
    assert _results(data) == [("accepted", None, None), ("rejected", "total_out_of_range", "input_tokens")]
    assert TemplateDayRollup.objects.get(day=DAY).input_tokens == MAX_ROLLUP_TOKENS


def test_money_sums_and_budget_spend_hold_more_than_a_trillion(tenant, instance, ingest, viewer):
    # Past numeric(18, 6), the old width: a template's day (summed over its instances) and a budget
    # period's spend are not bounded per instance, so their columns are wide instead.
    today = timezone.now().date()
    TemplateDayRollup.objects.create(
        tenant=tenant,
        day=today,
        template=instance.version.template,
        environment=instance.environment,
        provider="openai",
        model="gpt-4.1",
        entries=1,
        cost_usd=D("999999999999"),
    )
    BudgetFactory(tenant=tenant, amount_usd=D("100"), thresholds=[100])
    at = datetime(today.year, today.month, today.day, tzinfo=UTC).isoformat()
    assert ingest([entry(instance, "k", at=at, cost_usd="1")]).json()["accepted"] == 1
    trillion = D(10**12)
    assert TemplateDayRollup.objects.get(day=today).cost_usd == trillion
    assert BudgetAlert.objects.get().spend_usd == trillion
    report = viewer.client.get("/api/v1/costs/").json()
    assert D(report["total_usd"]) == trillion
    csv = b"".join(viewer.client.get("/api/v1/costs/", {"format": "csv"}).streaming_content).decode()
    assert ",1000000000000.000000," in csv


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (concurrent connections)")
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_cannot_pass_a_bound_together(tenant, instance):
    _span_block(instance, MAX_SPAN_COST_USD - D("1.5"))
    clients = [member_with(tenant, ["operator"], f"op-{i}").client for i in range(2)]
    batches = [{"entries": [entry(instance, f"k{i}", cost_usd="1")]} for i in range(2)]
    responses = race([lambda c=c, b=b: c.post(USAGE, b, format="json") for c, b in zip(clients, batches, strict=True)])
    results = sorted(r.json()["results"][0].get("code") or r.json()["results"][0]["result"] for r in responses)
    assert results == ["accepted", "total_out_of_range"]
    assert InstanceSpanRollup.objects.get(level=MAX_SPAN_LEVEL).cost_usd == MAX_SPAN_COST_USD - D("0.5")
