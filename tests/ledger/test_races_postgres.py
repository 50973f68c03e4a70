"""Ledger races settled by the database (PostgreSQL: concurrent connections; SQLite serializes writers)."""

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.db.models import Sum

from audit.choices import EventType
from ledger import ingest, prices, pricing
from ledger.models import BudgetAlert, DailyRollup, UsageEntry
from policies.models import InstanceSpend
from tests.conftest import change_records
from tests.helpers import member_with, race
from tests.ledger.conftest import USAGE
from tests.ledger.factories import BudgetAlertFactory, BudgetFactory, entry

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


# ---------------------------------------------------------------- a price written while usage of its model comes in

GPT_9 = {
    "provider": "openai",
    "model": "gpt-9",
    "input_usd_per_mtok": Decimal("2"),
    "output_usd_per_mtok": Decimal("8"),
    "effective_from": date(2025, 1, 1),
}


def _price_in_a_thread(tenant, actor) -> threading.Thread:
    """``price_create`` on its own connection, started now."""

    def run():
        try:
            prices.price_create(tenant=tenant, actor=actor, **GPT_9)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_price_committed_after_ingestion_read_the_prices_still_prices_its_entries(
    monkeypatch, tenant, instance, operator, compliance
):
    # Ingestion reads the prices (none), then the price is written and committed, then ingestion stores:
    # it reads the prices of its unpriced entries again under the price-table lock, and finds it.
    load = pricing.PriceTable.load.__func__
    calls = []

    def load_then_price(cls, *args):
        table = load(cls, *args)
        if not calls:
            calls.append(1)
            _price_in_a_thread(tenant, compliance.actor).join(timeout=30)
        return table

    monkeypatch.setattr(pricing.PriceTable, "load", classmethod(load_then_price))
    response = operator.client.post(USAGE, {"entries": [entry(instance, "k1", model="gpt-9")]}, format="json")
    assert response.json()["results"][0]["cost_source"] == "priced"
    assert UsageEntry.objects.get().cost_source == "priced"


def test_a_price_written_while_unpriced_usage_is_being_stored_waits_and_prices_it(
    monkeypatch, tenant, instance, operator, compliance
):
    # Ingestion holds the price-table lock (shared) with its unpriced entries inserted but not committed; the
    # price write waits for it, then finds the entries and prices them.
    store = ingest._store_within_bounds
    threads = []

    def store_while_a_price_is_written(*args):
        threads.append(_price_in_a_thread(tenant, compliance.actor))
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        with connection.cursor() as cursor:
            while threads[0].is_alive():  # until the price write waits for the lock (or, unlocked, is done)
                cursor.execute(waiting)
                if cursor.fetchone()[0]:
                    break
                threads[0].join(timeout=0.01)
        return store(*args)

    monkeypatch.setattr(ingest, "_store_within_bounds", store_while_a_price_is_written)
    response = operator.client.post(USAGE, {"entries": [entry(instance, "k1", model="gpt-9")]}, format="json")
    assert response.json()["results"][0]["cost_source"] == "unpriced"  # stored before the price committed
    threads[0].join(timeout=30)
    stored = UsageEntry.objects.get()
    assert (stored.cost_source, stored.cost_usd) == ("priced", Decimal("0.006"))
    assert DailyRollup.objects.get().cost_usd == Decimal("0.006")
    assert InstanceSpend.objects.get(instance=instance, period="day").actual_usd == Decimal("0.006")


# ---------------------------------------------------------------- one budget alert acknowledged by several at once


def test_an_alert_acknowledged_by_four_at_once_is_acknowledged_once(tenant):
    budget = BudgetFactory(tenant=tenant)
    alert = BudgetAlertFactory(budget=budget)
    clients = [member_with(tenant, ["compliance"], f"co-{i}").client for i in range(4)]
    url = f"/api/v1/budget-alerts/{alert.pk}/acknowledge/"
    responses = race([lambda c=c: c.post(url) for c in clients])
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409]
    winner = next(r.json() for r in responses if r.status_code == 200)
    alert.refresh_from_db()
    assert alert.acknowledged_by == winner["acknowledged_by"]
    assert len(change_records(budget, EventType.BUDGET_ALERT_ACKNOWLEDGED)) == 1
