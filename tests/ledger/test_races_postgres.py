"""Ledger races settled by the database (PostgreSQL: concurrent connections; SQLite serializes writers)."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from audit.choices import EventType
from ledger.models import BudgetAlert, DailyRollup, UsageEntry
from policies.models import InstanceSpend
from tests.conftest import change_records
from tests.helpers import member_with, race
from tests.ledger.conftest import USAGE
from tests.ledger.factories import BudgetFactory, entry

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (concurrent connections)"),
    pytest.mark.django_db(transaction=True),
]


def test_the_same_batch_sent_four_times_at_once_counts_once(tenant, instance):
    batch = {"entries": [entry(instance, f"k{i}", cost_usd="0.25") for i in range(200)]}
    clients = [member_with(tenant, ["operator"], f"op-{i}").client for i in range(4)]
    responses = race([lambda c=c: c.post(USAGE, batch, format="json") for c in clients])
    bodies = [r.json() for r in responses]
    assert sum(b["accepted"] for b in bodies) == 200, bodies
    assert sum(b["duplicates"] for b in bodies) == 600
    assert UsageEntry.objects.count() == 200
    assert DailyRollup.objects.aggregate(n=Sum("entries"))["n"] == 200
    assert InstanceSpend.objects.get(instance=instance, period="day").actual_usd == Decimal("50")


def test_concurrent_batches_cross_each_threshold_once(tenant, instance):
    BudgetFactory(tenant=tenant, amount_usd=Decimal("10"), thresholds=[25, 50, 75, 100])
    clients = [member_with(tenant, ["operator"], f"op-{i}").client for i in range(4)]
    batches = [{"entries": [entry(instance, f"b{n}-{i}", cost_usd="0.5") for i in range(6)]} for n in range(4)]
    responses = race([lambda c=c, b=b: c.post(USAGE, b, format="json") for c, b in zip(clients, batches, strict=True)])
    assert all(r.json()["accepted"] == 6 for r in responses)
    # $12 in all: every threshold crossed, each exactly once, whichever batch got there.
    assert sorted(BudgetAlert.objects.values_list("threshold", flat=True)) == [25, 50, 75, 100]
    records = change_records(event_type=EventType.BUDGET_THRESHOLD_CROSSED)
    assert sorted(r.payload["threshold"] for r in records) == [25, 50, 75, 100]


def test_one_key_sent_with_two_contents_at_once_is_one_entry_and_one_conflict(tenant, instance):
    clients = [member_with(tenant, ["operator"], f"op-{i}").client for i in range(2)]
    batches = [{"entries": [entry(instance, "call-1", cost_usd=cost)]} for cost in ("1", "2")]
    responses = race([lambda c=c, b=b: c.post(USAGE, b, format="json") for c, b in zip(clients, batches, strict=True)])
    results = sorted(r.json()["results"][0]["result"] for r in responses)
    assert results == ["accepted", "conflict"]
    assert UsageEntry.objects.count() == 1
    stored = UsageEntry.objects.get().cost_usd
    assert InstanceSpend.objects.get(instance=instance, period="day").actual_usd == stored
