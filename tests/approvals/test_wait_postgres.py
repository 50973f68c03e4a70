"""The wait server on PostgreSQL: waiting requests hold no database connection, a listener that lost its
connection finds what was decided meanwhile, and NOTIFY goes out when a decision or an expiry commits (never
for one rolled back)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from approvals import waiting
from approvals.services import approval_decide, approvals_expire_due
from approvals.waiting import WAIT_HEADER
from tests.approvals.waits import bearer, eventually, in_db, wait_server, wait_url, waiters_of
from tests.factories import make_api_key
from tests.helpers import run_async
from tests.policies.factories import make_approval

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (LISTEN/NOTIFY, connections)"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def runtime(tenant, instance):
    return make_api_key(tenant, ["runtime"], instance=instance)[1]


def backends() -> int:
    """Connections to the test database, other than this one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_waiting_requests_hold_no_database_connection(instance, runtime):
    """Thirty waits held: the database sees the wait server's four database threads and its listener, not a
    connection per wait."""
    approvals = [make_approval(instance, params={"n": n}) for n in range(30)]
    before = backends()

    async def scenario():
        async with wait_server(db_threads=4) as (client, hub):
            requests = [asyncio.ensure_future(client.get(wait_url(a, 30), headers=bearer(runtime))) for a in approvals]
            await eventually(lambda: hub.held == len(approvals) and hub.listening, what="every wait held")
            during = await asyncio.to_thread(_backends_closing)
            for request in requests:
                request.cancel()
            await asyncio.gather(*requests, return_exceptions=True)
            return during

    during = run_async(scenario())
    assert during - before <= 4 + 1, (before, during)


def _backends_closing() -> int:
    from django.db import connections

    try:
        return backends() - 1  # less the connection this thread opened to count
    finally:
        connections.close_all()


def test_a_listener_that_lost_its_connection_finds_what_was_decided_meanwhile(instance, runtime, approver, monkeypatch):
    approval = make_approval(instance)
    monkeypatch.setattr(waiting, "RECONNECT_SECONDS", (2.0, 2.0))  # the decision commits while no one listens

    def cut_listener():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s "
                "AND datname = current_database()",
                [waiting.LISTENER_NAME],
            )
            return cursor.rowcount

    async def scenario():
        async with wait_server() as (client, hub):
            request = asyncio.ensure_future(client.get(wait_url(approval, 60), headers=bearer(runtime)))
            await eventually(lambda: hub.held == 1 and hub.listening, what="the wait held, LISTEN in force")
            [waiter] = waiters_of(hub, approval)
            assert await in_db(hub, cut_listener) == 1
            await eventually(lambda: not hub.listening, what="the listener noticed")
            await in_db(hub, lambda: approval_decide(approval=approval, approve=True, actor=approver.actor))
            assert not waiter.event.is_set()  # its NOTIFY went to no one
            return await request, waiter

    response, waiter = run_async(scenario())
    assert waiter.event.is_set()  # woken by the recheck after reconnecting, not by the 60 s timeout
    assert (response.status_code, response.headers[WAIT_HEADER], response.json()["status"]) == (
        200,
        "decided",
        "APPROVED",
    )


def test_a_wait_that_times_out_while_the_listener_is_away_reads_again(instance, runtime, approver, monkeypatch):
    """Its first read may be stale then (a NOTIFY went to no one): the timeout's answer is read anew."""
    approval = make_approval(instance)
    monkeypatch.setattr(waiting, "RECONNECT_SECONDS", (30.0, 30.0))  # away for the rest of the wait

    def cut_listener():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s "
                "AND datname = current_database()",
                [waiting.LISTENER_NAME],
            )

    async def scenario():
        async with wait_server() as (client, hub):
            request = asyncio.ensure_future(client.get(wait_url(approval, 2), headers=bearer(runtime)))
            await eventually(lambda: hub.held == 1 and hub.listening, what="the wait held, LISTEN in force")
            await in_db(hub, cut_listener)
            await eventually(lambda: not hub.listening, what="the listener noticed")
            await in_db(hub, lambda: approval_decide(approval=approval, approve=True, actor=approver.actor))
            return await request

    response = run_async(scenario())
    assert (response.status_code, response.headers[WAIT_HEADER], response.json()["status"]) == (
        200,
        "decided",
        "APPROVED",
    )


def test_decisions_and_expiries_notify_at_commit_and_rollbacks_never(instance, approver):
    decided, rolled_back = make_approval(instance, params={"n": 1}), make_approval(instance, params={"n": 2})
    overdue = make_approval(instance, params={"n": 3}, expires_at=timezone.now() - timedelta(seconds=1))
    params = waiting.listen_params()
    params["application_name"] = "test-listener"
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute(f"LISTEN {waiting.CHANNEL}")
        with pytest.raises(RuntimeError), transaction.atomic():
            approval_decide(approval=rolled_back, approve=True, actor=approver.actor)
            raise RuntimeError("roll the decision back")
        approval_decide(approval=decided, approve=False, actor=approver.actor)
        assert approvals_expire_due() == 1
        heard = [n.payload for n in listener.notifies(timeout=10, stop_after=2)]
    assert heard == [str(decided.pk), str(overdue.pk)]
