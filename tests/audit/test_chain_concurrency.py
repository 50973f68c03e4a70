"""Appends to one tenant's chain from concurrent connections (threads) and processes are serialized by
the database, and verifications running meanwhile check a fixed range and never raise a false alarm."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections

from audit.choices import EventType
from audit.models import ChangeRecord
from audit.services import record_change, verify_chain
from tenancy.context import Actor
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
                    event_type=EventType.TEMPLATE_CHANGED,
                    target=tenant,
                    payload={"worker": n, "i": i},
                    actor=Actor.system(f"system:worker-{n}"),
                )
        except Exception as exc:  # collected and asserted below
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
    # The tenant's own creation is its first record (TENANT_CREATED); the appends follow it, unbroken.
    assert seqs == list(range(1, 1 + workers * per_worker + 1))
    result = verify_chain(tenant)
    assert result.ok and result.checked == 1 + workers * per_worker


@pytest.mark.django_db(transaction=True)
def test_verification_under_concurrent_appends_never_raises_a_false_alarm():
    """Readers verify while writers append: each verification checks one fixed range and holds."""
    tenant = TenantFactory()
    writers, per_writer = 4, 40
    stop = threading.Event()
    errors, results = [], []

    def append(n):
        try:
            for i in range(per_writer):
                record_change(
                    tenant=tenant,
                    event_type=EventType.TEMPLATE_CHANGED,
                    target=tenant,
                    payload={"writer": n, "i": i},
                    actor=Actor.system(f"system:writer-{n}"),
                )
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    def verify_repeatedly(full):
        try:
            while not stop.is_set():
                results.append(verify_chain(tenant, full=full))
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append, args=(n,)) for n in range(writers)]
    verifiers = [threading.Thread(target=verify_repeatedly, args=(full,)) for full in (True, False)]
    for t in verifiers + threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    for t in verifiers:
        t.join()

    assert errors == []
    assert len(results) >= 4
    broken = [r for r in results if not r.ok]
    assert broken == [], f"{len(broken)} of {len(results)} verifications under load reported a break: {broken[:3]}"
    assert verify_chain(tenant, full=True).checked == 1 + writers * per_writer  # + the tenant's creation


WORKER = """
import os, sys, time
import django
django.setup()
from tenancy.context import Actor
from tenancy.models import Tenant
from audit.choices import EventType
from audit.services import record_change

tenant_id, count, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tenant = Tenant.objects.get(pk=tenant_id)
open(f"{go}.ready.{os.getpid()}", "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
for i in range(count):
    record_change(tenant=tenant, event_type=EventType.TEMPLATE_CHANGED, target=tenant,
                  payload={"pid": os.getpid(), "i": i}, actor=Actor.system(f"system:pid-{os.getpid()}"))
"""


def _database_url() -> str:
    db = connection.settings_dict
    user = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{user}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_appends_from_several_processes_keep_one_unbroken_chain_while_verified(tmp_path):
    """Separate processes, each with its own connection, append to one chain while this process verifies."""
    tenant = TenantFactory()
    processes, per_process = 4, 25
    go = tmp_path / "go"
    env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "config.settings"}
    base = Path(settings.BASE_DIR)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tenant.pk), str(per_process), str(go)],
            cwd=base,
            env={**env, "PYTHONPATH": str(base)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.ready.*"))) < processes and time.monotonic() < deadline:
        time.sleep(0.05)  # every worker has set Django up and connected: start them together
    go.touch()
    results = []
    while any(w.poll() is None for w in workers):
        results.append(verify_chain(tenant))
    outcomes = [(w.wait(timeout=60), w.stderr.read()) for w in workers]

    assert [code for code, _ in outcomes] == [0] * processes, outcomes
    assert [r for r in results if not r.ok] == []
    rows = list(ChangeRecord.objects.filter(tenant=tenant).order_by("seq").values_list("seq", "actor"))
    # Record #1 is the tenant's creation (TENANT_CREATED); the workers' appends follow it, unbroken.
    assert [seq for seq, _ in rows] == list(range(1, 1 + processes * per_process + 1))
    assert len({actor for _, actor in rows[1:]}) == processes  # really several writers
    final = verify_chain(tenant, full=True)
    assert (final.ok, final.checked) == (True, 1 + processes * per_process)
