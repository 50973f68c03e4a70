"""The ledger is append-only in the database: UPDATE and DELETE of usage entries raise on SQLite and
PostgreSQL, whatever path they take (ORM or raw SQL); the model refuses nothing the triggers would allow."""

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
