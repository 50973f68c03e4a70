"""A re-wait reuses its caller's last read (approvals.waiting, "Re-waits reuse the last read"): the same
caller's next wait on a PENDING approval holds without running the action, while nothing can have changed
it; a decision, another caller, a lost listener or poller and the reuse bound each make it read again."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from approvals import waiting
from approvals.api import wait as server
from approvals.services import approval_decide
from approvals.waiting import WAIT_HEADER
from tests.approvals.waits import POSTGRES, bearer, eventually, in_db, shared_connection, wait_server, wait_url
from tests.factories import make_api_key
from tests.helpers import assert_error, run_async
from tests.policies.factories import make_approval

pytestmark = pytest.mark.django_db(transaction=POSTGRES)


@pytest.fixture
def shared():
    if POSTGRES:
        yield None
        return
    with shared_connection() as conn:
        yield conn


@pytest.fixture
def runtime(tenant, instance):
    """(key, secret) of a runtime key bound to ``instance``."""
    return make_api_key(tenant, ["runtime"], instance=instance)


@pytest.fixture
def passes(monkeypatch):
    """The action's runs through the wait server, in order: "first" (before waiting) or "final"."""
    runs = []
    respond = server._Handler.respond

    def counted(self, scope, body, deferral):
        runs.append("final" if deferral.final else "first")
        return respond(self, scope, body, deferral)

    monkeypatch.setattr(server._Handler, "respond", counted)
    return runs


async def _listening(hub):
    """The listener (PostgreSQL) or poller (SQLite) started, as the first wait starts it; LISTEN in force."""
    hub._ensure_watching()
    if POSTGRES:
        await eventually(lambda: hub.in_sync, what="LISTEN")


def _answer(response):
    return response.status_code, response.headers[WAIT_HEADER], response.json()


def test_the_same_callers_rewait_holds_on_its_last_read(instance, runtime, passes, shared):
    approval = make_approval(instance)

    async def scenario():
        async with wait_server(shared=shared) as (client, hub):
            await _listening(hub)
            first = await client.get(wait_url(approval, 0.2), headers=bearer(runtime[1]))
            again = await client.get(wait_url(approval, 0.3), headers=bearer(runtime[1]))
            return first, again

    first, again = run_async(scenario())
    assert _answer(first)[:2] == (200, "timeout") and first.json()["status"] == "PENDING"
    assert _answer(again) == _answer(first)
    assert passes == ["first"]  # the re-wait ran neither the action nor a query


def test_a_decision_between_two_waits_is_answered_by_the_next(instance, runtime, approver, passes, shared):
    """No wait is held when the decision commits; hearing it drops the kept read (PostgreSQL: its NOTIFY;
    SQLite: the poller reads the kept ids too), so the next wait reads the decision."""
    approval = make_approval(instance)

    async def scenario():
        async with wait_server(shared=shared) as (client, hub):
            await _listening(hub)
            first = await client.get(wait_url(approval, 0.2), headers=bearer(runtime[1]))
            assert approval.pk in hub._reads
            await in_db(hub, lambda: approval_decide(approval=approval, approve=True, actor=approver.actor))
            await eventually(lambda: approval.pk not in hub._reads, what="the decision heard")
            return first, await client.get(wait_url(approval, 5), headers=bearer(runtime[1]))

    first, then = run_async(scenario())
    assert first.json()["status"] == "PENDING"
    assert _answer(then)[:2] == (200, "decided") and then.json()["status"] == "APPROVED"
    assert passes == ["first", "first"]


def test_another_caller_reads_for_itself(tenant, instance, runtime, approver, outsider, passes, shared):
    approval = make_approval(instance)
    colleague = make_api_key(tenant, ["runtime"], instance=instance)[1]

    async def scenario():
        async with wait_server(shared=shared) as (client, hub):
            await _listening(hub)
            mine = await client.get(wait_url(approval, 0.2), headers=bearer(runtime[1]))
            theirs = await client.get(wait_url(approval, 0.2), headers=bearer(outsider.secret))
            ours = await client.get(wait_url(approval, 0.2), headers=bearer(colleague))
            return mine, theirs, ours

    mine, theirs, ours = run_async(scenario())
    assert mine.json()["status"] == "PENDING"
    assert_error(theirs, 404, "not_found")  # another tenant's key never gets the kept answer
    assert _answer(ours) == _answer(mine)
    assert passes == ["first", "first", "first"]


def test_a_read_is_reused_for_reuse_seconds_at_most_so_a_revoked_key_is_refused(
    instance, runtime, passes, shared, monkeypatch
):
    """Within the bound a revoked key still hears "PENDING" (no decision is ever answered without
    authenticating again); past it, its wait authenticates and is refused. The hub's clock is the test's."""
    from tenancy.services import api_key_revoke

    clock = SimpleNamespace(monotonic=lambda: 1000.0)
    monkeypatch.setattr(waiting, "time", clock)
    key, secret = runtime
    approval = make_approval(instance)

    async def scenario():
        async with wait_server(shared=shared) as (client, hub):
            await _listening(hub)
            first = await client.get(wait_url(approval, 0.1), headers=bearer(secret))
            await in_db(hub, lambda: api_key_revoke(key=key))
            within = await client.get(wait_url(approval, 0.1), headers=bearer(secret))
            clock.monotonic = lambda: 1000.0 + waiting.REUSE_SECONDS
            return first, within, await client.get(wait_url(approval, 0.1), headers=bearer(secret))

    first, within, past = run_async(scenario())
    assert _answer(within) == _answer(first)
    assert past.status_code == 401
    assert passes == ["first", "first"]


def test_a_wait_with_more_than_a_timeout_in_its_query_runs_the_action(instance, runtime, passes, shared):
    approval = make_approval(instance)
    url = f"/api/v1/approvals/{approval.pk}/wait/"

    async def scenario():
        async with wait_server(shared=shared) as (client, hub):
            await _listening(hub)
            for query in ("?timeout=0.2", "?timeout=0.2&timeout=0.3", "?timeout=0", "?timeout=0.2&x=1"):
                await client.get(url + query, headers=bearer(runtime[1]))

    run_async(scenario())
    assert passes == ["first", "first", "first", "first"]  # kept by the first; the others are no plain re-waits


@pytest.mark.parametrize("lost", [None, "woken", "epoch", "not listening"])
def test_a_read_is_kept_only_if_nothing_could_have_changed_it_unheard(lost):
    """A wake-up between the waiter's registration and the end of its read (the decision's NOTIFY may
    overtake the read's answer), a listener or poller that lost track meanwhile, or (PostgreSQL) a read begun
    before LISTEN was in force: the read is not kept."""
    hub = waiting.WaitHub(max_waiters=10, db_threads=1, poll_seconds=1)
    hub.listening = lost != "not listening"  # the initial recheck (_synced) need not have run
    hub._ensure_watching = lambda: None  # no listener or poller: this test plays their part
    if lost == "not listening" and not POSTGRES:
        pytest.skip("SQLite's poller reads every kept id: there is no LISTEN to wait for")

    async def scenario():
        waiter = hub.register(uuid.uuid4())  # registered before its read began, as the wait server does
        token = hub.read_token()
        if lost == "woken":
            hub.wake(waiter.approval_id)
        elif lost == "epoch":
            hub.forget_reads()
        elif lost == "not listening":
            hub.listening = True  # LISTEN came in force during the read: too late for it
        later = timezone.now() + timedelta(minutes=5)
        kept = hub.remember(waiter, b"caller", (200, [], b"{}"), later, token)
        return kept, hub.recall(waiter.approval_id, b"caller", timezone.now())

    kept, recalled = run_async(scenario())
    assert kept is (lost is None) and (recalled is not None) is (lost is None)
    hub.executor.shutdown()
