"""The ledger is append-only in the database: UPDATE and DELETE of usage entries raise on SQLite and
PostgreSQL, whatever path they take (ORM or raw SQL); the model refuses nothing the triggers would allow.
The one exception (ledger.triggers): an unpriced entry's cost and cost source may be set, once, to priced.
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.utils import DatabaseError

from ledger.models import UsageEntry
from tests.ledger.factories import entry

TABLE = "ledger_usageentry"


@pytest.fixture
def stored(instance, ingest):
    assert ingest([entry(instance, "kept", cost_usd="1.25")]).json()["accepted"] == 1
    return UsageEntry.objects.get()


@pytest.mark.parametrize(
    "attempt",
    [
        lambda: UsageEntry.objects.update(cost_usd=0),
        lambda: UsageEntry.objects.filter(idempotency_key="kept").update(input_tokens=1),
        lambda: UsageEntry.objects.all().delete(),
    ],
    ids=["update-all", "update-one", "delete"],
)
def test_orm_update_and_delete_raise_at_the_database(stored, attempt):
    with pytest.raises(DatabaseError, match="append-only|cannot be deleted"), transaction.atomic():
        attempt()
    assert UsageEntry.objects.get().cost_usd == stored.cost_usd


@pytest.mark.parametrize(
    "sql",
    [f"UPDATE {TABLE} SET cost_usd = 0 WHERE id = %s", f"DELETE FROM {TABLE} WHERE id = %s"],
    ids=["update", "delete"],
)
def test_raw_sql_update_and_delete_raise(stored, sql):
    from django.db import connection

    with pytest.raises(DatabaseError, match="append-only|cannot be deleted"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, [stored.pk])
    assert UsageEntry.objects.filter(pk=stored.pk).exists()


# ---------------------------------------------------------------- the one update allowed: pricing an unpriced entry


@pytest.fixture
def unpriced(instance, ingest):
    assert ingest([entry(instance, "unpriced", model="gpt-9")]).json()["unpriced"] == 1
    return UsageEntry.objects.get(idempotency_key="unpriced")


def test_an_unpriced_entrys_cost_may_be_set_once(unpriced):
    UsageEntry.objects.filter(pk=unpriced.pk).update(cost_usd=Decimal("0.5"), cost_source="priced")
    assert UsageEntry.objects.values_list("cost_usd", "cost_source").get() == (Decimal("0.5"), "priced")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        UsageEntry.objects.filter(pk=unpriced.pk).update(cost_usd=Decimal("0.7"))  # priced now: final


@pytest.mark.parametrize(
    "changes",
    [
        {"cost_usd": Decimal("0.5")},  # still unpriced
        {"cost_usd": Decimal("0.5"), "cost_source": "reported"},
        {"cost_usd": Decimal("0.5"), "cost_source": "priced", "input_tokens": 1},
        {"cost_usd": Decimal("0.5"), "cost_source": "priced", "cached_input_tokens": 1},
        {"cost_usd": Decimal("0.5"), "cost_source": "priced", "model": "gpt-4.1"},
        {"cost_usd": Decimal("0.5"), "cost_source": "priced", "occurred_at": datetime(2026, 1, 1, tzinfo=UTC)},
    ],
    ids=["cost-only", "to-reported", "tokens", "cached", "model", "occurred_at"],
)
def test_any_other_change_of_an_unpriced_entry_raises(unpriced, changes):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        UsageEntry.objects.filter(pk=unpriced.pk).update(**changes)
    assert UsageEntry.objects.values_list("cost_usd", "cost_source").get() == (0, "unpriced")


def test_a_reported_entry_cannot_be_turned_into_a_priced_one(stored):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        UsageEntry.objects.filter(pk=stored.pk).update(cost_source="priced", cost_usd=0)


def test_an_unpriced_entry_cannot_be_deleted(unpriced):
    with pytest.raises(DatabaseError, match="cannot be deleted"), transaction.atomic():
        UsageEntry.objects.filter(pk=unpriced.pk).delete()
    assert UsageEntry.objects.filter(pk=unpriced.pk).exists()
