"""End to end: changes committed by one process reach a real HTTP receiver through a real ``manage.py
worker`` process, signed per Standard Webhooks (verified with the reference library), on SQLite and
PostgreSQL alike (``world``: the database both reach); the worker stops cleanly on SIGTERM."""

import signal
import time
from collections import Counter

import pytest
from standardwebhooks.webhooks import Webhook

# Committed rows, which other processes see (the ``world`` fixture's rule).
pytestmark = pytest.mark.django_db(transaction=True)

# Producers of each event type, run in a process of their own (``world.run``); each appends the types
# it makes to ``made``. Owners of other types add theirs here (issue 25: one entry per type).
SETUP = """
from datetime import timedelta
from decimal import Decimal
from django.utils import timezone
from tenancy.context import Actor
from tests.factories import TenantFactory, make_api_key
from tests.policies.factories import make_instance
from notifications import services
from approvals.services import approval_open, approval_decide, approval_expire, approval_withdraw

system = Actor.system()
tenant = TenantFactory(slug="acme", name="Acme")
endpoint, secret = services.endpoint_create(
    tenant=tenant, actor=system, name="receiver", kind="webhook", url=os.environ["RECEIVER_URL"], event_types=[]
)
instance = make_instance(tenant)
key, _ = make_api_key(tenant, ["runtime"])
runtime = Actor.for_key(key)
made = []

def open_approval(tool, timeout=3600):
    approval, _ = approval_open(
        tenant=tenant, instance=instance, tool=tool, params={"to": "x"}, params_hash=tool.ljust(64, "0")[:64],
        risk="high", reasons=[{"code": "needs_approval", "message": "high risk"}], timeout_seconds=timeout,
        actor=runtime,
    )
    made.append("approval.requested")
    return approval
"""

PRODUCERS = {
    "approval.decided": """
approval_decide(approval=open_approval("payments.refund"), approve=True, note="ok", actor=system)
made.append("approval.decided")
""",
    "approval.expired": """
approval_expire(approval=open_approval("crm.delete", timeout=1), now=timezone.now() + timedelta(seconds=5))
made.append("approval.expired")
""",
    "approval.withdrawn": """
approval_withdraw(approval=open_approval("email.send"), actor=runtime)
made.append("approval.withdrawn")
""",
    "version.tampered": """
from django.db import connection
from arm.dbtriggers import _postgres_sql, _sqlite_sql, drop_triggers_sql
from registry.services import version_verify_integrity
from tests.helpers import VERSION_PROTECTED_COLUMNS, VERSION_TABLE, db_id
version = instance.version
with transaction.atomic(), connection.cursor() as cursor:  # an attacker with SQL access, triggers put back
    for sql in drop_triggers_sql(connection.vendor, VERSION_TABLE, VERSION_PROTECTED_COLUMNS):
        cursor.execute(sql)
    cursor.execute(f"UPDATE {VERSION_TABLE} SET genome = %s WHERE id = %s", ['{"tampered": true}', db_id(version)])
    create = _postgres_sql if connection.vendor == "postgresql" else _sqlite_sql
    for sql in create(VERSION_TABLE, VERSION_PROTECTED_COLUMNS):
        cursor.execute(sql)
version_verify_integrity(version=version, actor=system)
made += ["version.tampered", "instance.quarantined"]
""",
    "budget.threshold_crossed": """
from audit.services import record_change
from ledger.models import Budget
budget = Budget.objects.create(
    tenant=tenant, name="monthly", scope="tenant", period="monthly", amount_usd=Decimal("100")
)
record_change(tenant=tenant, event_type="BUDGET_THRESHOLD_CROSSED", target=budget, payload={
    "budget": "monthly", "threshold": 80, "period": "monthly", "period_start": "2026-12-01",
    "spend_usd": "81.000000", "amount_usd": "100.00"})
made.append("budget.threshold_crossed")
""",
    "arm.test": """
services.send_test_event(endpoint=endpoint, actor=system)
made.append("arm.test")
""",
}

STATE = """
from notifications.models import Delivery, DeliveryAttempt
result = {
    "deliveries": sorted([d.status, d.attempts, d.last_status_code] for d in Delivery.objects.all()),
    "attempts": DeliveryAttempt.objects.count(),
}
"""


def test_every_event_type_reaches_the_receiver_signed_through_a_worker_process(world, workers, receiver):
    (worker,) = workers.start(1)
    world.env["RECEIVER_URL"] = receiver.url
    made = world.run(SETUP + "".join(PRODUCERS.values()) + "\nresult = {'secret': secret, 'made': made}")
    expected = Counter(made["made"])

    received = receiver.wait_for(sum(expected.values()))

    verifier = Webhook(made["secret"])
    bodies = [verifier.verify(item.body, item.headers) for item in received]  # raises unless signed right
    assert Counter(body["type"] for body in bodies) == expected
    assert len({item.headers["webhook-id"] for item in received}) == len(received)
    assert all(item.headers["webhook-id"].startswith("msg_") for item in received)
    assert all(body["data"]["tenant"] == "acme" for body in bodies)
    by_type = {body["type"]: body["data"] for body in bodies}
    assert by_type["approval.decided"]["approval"]["status"] == "APPROVED"
    assert by_type["approval.decided"]["url"].startswith("https://arm.test/approvals/?approval=")
    assert by_type["instance.quarantined"]["reason"] == "integrity check failed"
    assert by_type["budget.threshold_crossed"]["threshold_percent"] == 80

    state = world.run(STATE)
    assert state["deliveries"] == [["succeeded", 1, 200]] * len(received)
    assert state["attempts"] == len(received)

    assert worker.stop(signal.SIGTERM) == 0
    assert "stopped" in worker.lines[-1]


def test_a_rolled_back_change_is_never_delivered(world, workers, receiver):
    (worker,) = workers.start(1)
    world.env["RECEIVER_URL"] = receiver.url
    world.run(
        SETUP
        + """
class Abort(Exception):
    pass
try:
    with transaction.atomic():
        open_approval("rolled.back")
        raise Abort
except Abort:
    pass
services.send_test_event(endpoint=endpoint, actor=system)  # committed after it: the marker
result = {}
"""
    )
    (marker,) = receiver.wait_for(1)
    assert marker.json()["type"] == "arm.test"
    # The worker drains oldest first, so a committed approval.requested would have come before the marker.
    assert worker.stop() == 0
    assert [item.json()["type"] for item in receiver.received] == ["arm.test"]


def test_sigterm_while_sending_finishes_the_delivery_then_exits(world, workers, receiver):
    (worker,) = workers.start(1)
    world.env["RECEIVER_URL"] = receiver.url
    arrived = []

    def slow(item):
        arrived.append(item)
        return 200, 1.0

    receiver.respond = slow
    world.run(SETUP + PRODUCERS["arm.test"] + "\nresult = {}")
    deadline = time.monotonic() + 60
    while not arrived and time.monotonic() < deadline:  # until the worker is inside the request
        time.sleep(0.01)
    assert arrived
    assert worker.stop(signal.SIGTERM) == 0
    assert world.run(STATE)["deliveries"] == [["succeeded", 1, 200]]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_idle_worker_stops_on_a_signal(world, workers, sig):
    (worker,) = workers.start(1)
    assert worker.stop(sig) == 0
    assert "stopped" in worker.output


def test_a_worker_killed_mid_send_leaves_its_lease_and_another_sends_it_again(world, workers, receiver):
    (first,) = workers.start(1, ARM_WEBHOOK_LEASE_SECONDS=2)
    world.env["RECEIVER_URL"] = receiver.url
    arrived = []

    def first_one_hangs(item):
        arrived.append(item)
        return (200, 30.0) if len(arrived) == 1 else (200, 0.0)

    receiver.respond = first_one_hangs
    world.run(SETUP + PRODUCERS["arm.test"] + "\nresult = {}")
    deadline = time.monotonic() + 60
    while not arrived and time.monotonic() < deadline:  # until the first worker is inside the request
        time.sleep(0.01)
    first.kill()  # SIGKILL: no chance to record anything

    (second,) = workers.start(1)
    received = receiver.wait_for(2)  # the hung request is recorded when its 30 s answer ends; this one at once
    assert len({item.headers["webhook-id"] for item in received}) == 1  # the same event: receivers dedupe
    assert second.stop() == 0
    assert world.run(STATE)["deliveries"] == [["succeeded", 2, 200]]  # the killed attempt counted too
