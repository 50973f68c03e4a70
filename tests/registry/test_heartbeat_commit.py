"""A heartbeat that is its own transaction commits without waiting for its WAL flush on PostgreSQL
(``registry.sql``); the setting never outlives the heartbeat's transaction
and never applies inside an outer one, where audited writes may be."""

import pytest
from django.db import connection, transaction
from django.utils import timezone

from registry import sql
from tests.factories import InstanceFactory, TemplateFactory, VersionFactory

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="synchronous_commit is PostgreSQL's (SQLite never waits on commit)"
)


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('synchronous_commit')")
        return cursor.fetchone()[0]


@pytest.fixture
def instance(tenant):
    version = VersionFactory(template=TemplateFactory(tenant=tenant))
    return InstanceFactory(version=version, state="ACTIVE")


@pytest.mark.django_db(transaction=True)
def test_the_asynchronous_statement_turns_the_wait_off_for_its_own_transaction_only(instance):
    assert synchronous_commit() == "on"
    with transaction.atomic():
        assert sql.beat(instance.tenant_id, instance.pk, timezone.now(), None) == 1
        assert synchronous_commit() == "off"  # in effect at this transaction's commit
    assert synchronous_commit() == "on"
    with transaction.atomic():
        sql.commit_without_flush_wait()
        assert synchronous_commit() == "off"
        with transaction.atomic():  # a savepoint does not end it: hence never inside an outer transaction
            pass
        assert synchronous_commit() == "off"
    assert synchronous_commit() == "on"


@pytest.mark.django_db
def test_inside_an_outer_transaction_a_heartbeat_waits_like_every_write(runtime_key, instance):
    # pytest-django's test transaction is such an outer one: the plain statement, the setting untouched
    assert connection.in_atomic_block and not sql.commits_async()
    response = runtime_key[1].post(f"/api/v1/instances/{instance.pk}/heartbeat/", {}, format="json")
    assert response.status_code == 200
    assert synchronous_commit() == "on"
    batch = runtime_key[1].post("/api/v1/instances/heartbeats/", {"instances": [str(instance.pk)]}, format="json")
    assert batch.status_code == 200 and synchronous_commit() == "on"


@pytest.mark.django_db(transaction=True)
def test_a_heartbeat_on_its_own_is_asynchronous_visible_and_leaves_the_session_synchronous(runtime_key, instance):
    assert not connection.in_atomic_block and sql.commits_async()
    transaction.set_autocommit(False)  # a transaction managed by hand is an outer one too
    try:
        assert not sql.commits_async()
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)
    response = runtime_key[1].post(f"/api/v1/instances/{instance.pk}/heartbeat/", {"status": {"n": 1}}, format="json")
    assert response.status_code == 200
    batch = runtime_key[1].post("/api/v1/instances/heartbeats/", {"instances": [str(instance.pk)]}, format="json")
    assert batch.json()["results"] == [{"id": str(instance.pk), "result": "ok"}]
    # committed and visible to every other connection at once; only the flush to disk is deferred
    instance.refresh_from_db()
    assert instance.last_heartbeat_at is not None and instance.heartbeat_status is None
    assert synchronous_commit() == "on"
    with transaction.atomic():  # the next transaction (an audited write, say) waits for its flush
        assert synchronous_commit() == "on"
