"""Appends to one tenant's chain from concurrent connections are serialized by the database."""

import threading

import pytest
from django.db import connection, connections

from arm.context import Actor
from audit.choices import EventType
from audit.models import ChangeRecord
from audit.services import record_change, verify_chain
from tests.factories import TenantFactory

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs real concurrent writers (PostgreSQL row locks)"
)


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_from_many_connections_keep_one_unbroken_chain():
    tenant = TenantFactory()
    workers, per_worker = 6, 15
    barrier = threading.Barrier(workers)
    errors = []

    def append(n):
        try:
            barrier.wait()
            for i in range(per_worker):
                record_change(
                    tenant=tenant,
                    event_type=EventType.TEMPLATE_UPDATED,
                    target=tenant,
                    payload={"worker": n, "i": i},
                    actor=Actor.system(f"system:worker-{n}"),
                )
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    seqs = list(ChangeRecord.objects.filter(tenant=tenant).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, workers * per_worker + 1))
    result = verify_chain(tenant)
    assert result.ok and result.checked == workers * per_worker
