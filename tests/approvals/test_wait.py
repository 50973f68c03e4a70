"""GET /api/v1/approvals/{id}/wait/: answered when the decision commits (PostgreSQL: NOTIFY; SQLite: the
poller), at the timeout with the current state, or at the approval's own expiry; isolated like every
read; and a waiting request holds no thread (nor, on PostgreSQL, a connection: test_wait_postgres.py)."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.services import approval_decide
from approvals.waiting import WAIT_HEADER
from tests.approvals.waits import (
    APP,
    POSTGRES,
    asgi_scope,
    bearer,
    eventually,
    in_db,
    shared_connection,
    wait_server,
    wait_url,
    waiters_of,
)
from tests.factories import make_api_key
from tests.helpers import assert_error, run_async
from tests.policies.factories import make_approval, make_instance

pytestmark = pytest.mark.django_db(transaction=POSTGRES)


@pytest.fixture
def shared():
    """The test's connection for the hub's thread on SQLite (see tests/approvals/waits.py); None on PostgreSQL."""
    if POSTGRES:
        yield None
        return
    with shared_connection() as conn:
        yield conn


@pytest.fixture
def runtime(tenant, instance):
    """The secret of a runtime key bound to ``instance``."""
    return make_api_key(tenant, ["runtime"], instance=instance)[1]


def decide(approval, member, approve=True):
    return approval_decide(approval=approval, approve=approve, actor=member.actor)


async def _listening(hub):
    if POSTGRES:  # a decision before LISTEN would be found by the first recheck, not by its NOTIFY
        await eventually(lambda: hub.listening, what="LISTEN")


def test_a_wait_is_answered_when_the_decision_commits(instance, runtime, approver, shared):
    approval = make_approval(instance)

    async def scenario():
        async with wait_server(shared=shared) as (client, hub):
            request = asyncio.ensure_future(client.get(wait_url(approval, 30), headers=bearer(runtime)))
            await eventually(lambda: hub.held == 1, what="the wait held")
            await _listening(hub)
            [waiter] = waiters_of(hub, approval)
            await in_db(hub, decide, approval, approver)
            return await request, waiter, hub.count

    response, waiter, left = run_async(scenario())
    assert response.status_code == 200, response.text
    assert response.headers[WAIT_HEADER] == "decided"
    body = response.json()
    assert (body["id"], body["status"], body["decided_by"]) == (str(approval.pk), "APPROVED", approver.actor.ref)
    assert waiter.event.is_set()  # woken by the decision, not by its 30 s deadline
    assert left == 0


def test_a_withdrawal_wakes_the_wait(tenant, instance, shared):
    """Every way out of PENDING tells the waiters: here the runtime withdraws its own request."""
    from approvals.services import approval_withdraw
    from tenancy.context import Actor

    key, secret = make_api_key(tenant, ["runtime"], instance=instance)
    approval = make_approval(instance)

    def withdraw():
        return approval_withdraw(approval=approval, note="not needed", actor=Actor.for_key(key))

    async def scenario():
        async with wait_server(shared=shared) as (client, hub):
            request = asyncio.ensure_future(client.get(wait_url(approval, 30), headers=bearer(secret)))
            await eventually(lambda: hub.held == 1, what="the wait held")
            await _listening(hub)
            [waiter] = waiters_of(hub, approval)
            await in_db(hub, withdraw)
            return await request, waiter

    response, waiter = run_async(scenario())
    assert (response.status_code, response.headers[WAIT_HEADER], response.json()["status"]) == (
        200,
        "decided",
        "WITHDRAWN",
    )
    assert waiter.event.is_set()


def test_a_wait_times_out_with_the_current_state(instance, runtime, shared):
    approval = make_approval(instance)

    async def scenario():
        async with wait_server(shared=shared) as (client, hub):
            request = asyncio.ensure_future(client.get(wait_url(approval, 0.3), headers=bearer(runtime)))
            await eventually(lambda: hub.held == 1, what="the wait held")
            [waiter] = waiters_of(hub, approval)
            return await request, waiter

    response, waiter = run_async(scenario())
    assert response.status_code == 200, response.text
    assert response.headers[WAIT_HEADER] == "timeout"
    assert response.json()["status"] == "PENDING"
    assert not waiter.event.is_set()


def test_a_wait_that_times_out_reads_once_and_a_woken_wait_twice(instance, runtime, approver, shared, monkeypatch):
    """The timeout's answer is the one read before waiting (a change would have woken the wait); a woken
    wait runs the action once more for its answer."""
    from approvals.api import wait as server

    passes = []
    respond = server._Handler.respond

    def counted(self, scope, body, deferral):
        passes.append("final" if deferral.final else "first")
        return respond(self, scope, body, deferral)

    monkeypatch.setattr(server._Handler, "respond", counted)
    quiet, decided = make_approval(instance), make_approval(instance, params={"n": 1})

    async def scenario():
        async with wait_server(shared=shared) as (client, hub):
            timed_out = await client.get(wait_url(quiet, 0.2), headers=bearer(runtime))
            request = asyncio.ensure_future(client.get(wait_url(decided, 30), headers=bearer(runtime)))
            await eventually(lambda: hub.held == 1, what="the wait held")
            await _listening(hub)
            await in_db(hub, decide, decided, approver)
            return timed_out, await request

    timed_out, woken = run_async(scenario())
    assert (timed_out.headers[WAIT_HEADER], timed_out.json()["status"]) == ("timeout", "PENDING")
    assert (woken.headers[WAIT_HEADER], woken.json()["status"]) == ("decided", "APPROVED")
    assert passes == ["first", "first", "final"]


def test_timeout_zero_and_a_decided_approval_answer_at_once(instance, runtime, approver, shared):
    pending, decided = make_approval(instance), make_approval(instance, params={"to": "b"})
    decide(decided, approver, approve=False)

    async def scenario():
        async with wait_server(shared=shared) as (client, hub):
            now = await client.get(wait_url(pending, 0), headers=bearer(runtime))
            done = await client.get(wait_url(decided), headers=bearer(runtime))  # default timeout: 30 s
            return now, done, hub.count

    now, done, left = run_async(scenario())
    assert (now.status_code, now.headers[WAIT_HEADER], now.json()["status"]) == (200, "timeout", "PENDING")
    assert (done.status_code, done.headers[WAIT_HEADER], done.json()["status"]) == (200, "decided", "DENIED")
    assert left == 0


def test_an_approval_that_expires_during_the_wait_answers_expired(instance, runtime, shared):
    approval = make_approval(instance, expires_at=timezone.now() + timedelta(seconds=0.5))

    async def scenario():
        async with wait_server(shared=shared) as (client, hub):
            request = asyncio.ensure_future(client.get(wait_url(approval, 60), headers=bearer(runtime)))
            await eventually(lambda: hub.held == 1, what="the wait held")
            [waiter] = waiters_of(hub, approval)
            return await request, waiter

    response, waiter = run_async(scenario())
    assert waiter.until == approval.expires_at  # the wait ends at the expiry, not after 60 s
    assert response.status_code == 200, response.text
    assert (response.headers[WAIT_HEADER], response.json()["status"]) == ("decided", "EXPIRED")


def test_another_tenants_approval_and_another_instances_answer_404(tenant, instance, runtime, outsider, shared):
    approval = make_approval(instance)
    elsewhere = make_api_key(tenant, ["runtime"], instance=make_instance(tenant))[1]

    async def scenario():
        async with wait_server(shared=shared) as (client, hub):
            urls = (wait_url(approval, 0), wait_url(approval, 30))
            theirs = [await client.get(url, headers=bearer(outsider.secret)) for url in urls]
            other = [await client.get(url, headers=bearer(elsewhere)) for url in urls]
            mine = await client.get(wait_url(approval, 0), headers=bearer(runtime))
            anonymous = await client.get(wait_url(approval, 30))
            return theirs, other, mine, anonymous, hub.count

    theirs, other, mine, anonymous, left = run_async(scenario())
    for response in (*theirs, *other):
        assert_error(response, 404, "not_found")
    assert mine.status_code == 200 and mine.json()["id"] == str(approval.pk)
    assert anonymous.status_code == 401
    assert left == 0


def test_a_signed_in_member_waits_with_the_session(instance, viewer, outsider, shared):
    """The wait server runs Django's middleware: the session cookie authenticates as on gunicorn."""
    from django.conf import settings
    from django.test import Client

    approval = make_approval(instance)

    def session_of(user) -> dict:
        browser = Client()
        browser.force_login(user)
        return {"Cookie": f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"}

    ours, theirs = session_of(viewer.user), session_of(outsider.user)

    async def scenario():
        async with wait_server(shared=shared) as (client, _):
            return (
                await client.get(wait_url(approval, 0), headers=ours),
                await client.get(wait_url(approval, 0), headers=theirs),
            )

    mine, other = run_async(scenario())
    assert (mine.status_code, mine.json()["id"], mine.headers[WAIT_HEADER]) == (200, str(approval.pk), "timeout")
    assert_error(other, 404, "not_found")


@pytest.mark.parametrize("timeout", ["-1", "60.5", "abc", "nan", "inf"])
def test_a_timeout_outside_0_to_60_seconds_answers_400(instance, runtime, timeout, shared):
    approval = make_approval(instance)

    async def scenario():
        async with wait_server(shared=shared) as (client, _):
            return await client.get(wait_url(approval, timeout), headers=bearer(runtime))

    assert_error(run_async(scenario()), 400, "validation_error", contains=["timeout"])


def test_waiting_requests_hold_no_thread(instance, runtime, shared):
    """Twenty waits held at once: the process runs no more threads than its fixed database threads (a
    server that parks a thread per waiting request, as Django's ASGI handler does with synchronous
    middleware, would run twenty more)."""
    approvals = [make_approval(instance, params={"n": n}) for n in range(20)]
    before = threading.active_count()

    async def scenario():
        async with wait_server(shared=shared, db_threads=4) as (client, hub):
            requests = [asyncio.ensure_future(client.get(wait_url(a, 30), headers=bearer(runtime))) for a in approvals]
            await eventually(lambda: hub.held == len(approvals), what="every wait held")
            during = threading.active_count()
            for request in requests:
                request.cancel()
            await asyncio.gather(*requests, return_exceptions=True)
            return during

    during = run_async(scenario())
    assert during - before <= 4 + 1  # the database threads, and asyncio.to_thread's on PostgreSQL


def test_the_waits_of_a_process_are_capped(instance, runtime, approver, shared):
    first, second, third = (make_approval(instance, params={"n": n}) for n in range(3))

    async def scenario():
        async with wait_server(shared=shared, max_waiters=2) as (client, hub):
            held = [
                asyncio.ensure_future(client.get(wait_url(a, 30), headers=bearer(runtime))) for a in (first, second)
            ]
            await eventually(lambda: hub.held == 2, what="two waits held")
            refused = await client.get(wait_url(third, 30), headers=bearer(runtime))
            await _listening(hub)
            await in_db(hub, decide, first, approver)
            await in_db(hub, decide, second, approver)
            return refused, await asyncio.gather(*held)

    refused, answered = run_async(scenario())
    assert_error(refused, 503, "too_many_waiters")
    assert refused.headers["Retry-After"] == "5"
    assert [r.headers[WAIT_HEADER] for r in answered] == ["decided", "decided"]


def test_a_client_that_goes_away_frees_its_wait(instance, runtime, shared):
    approval = make_approval(instance)
    sent = []

    async def scenario():
        async with wait_server(shared=shared) as (_, hub):
            gone = asyncio.Event()
            messages = [{"type": "http.request", "body": b"", "more_body": False}]

            async def receive():
                if messages:
                    return messages.pop()
                await gone.wait()
                return {"type": "http.disconnect"}

            async def send(message):
                sent.append(message)

            call = asyncio.ensure_future(APP(asgi_scope(approval, b"timeout=60", runtime), receive, send))
            await eventually(lambda: hub.held == 1, what="the wait held")
            gone.set()
            await call
            return hub.count

    assert run_async(scenario()) == 0
    assert sent == []  # nothing is sent to a client that is gone


def test_a_query_string_that_is_not_utf8_answers_400(instance, runtime, shared):
    """As Django's ASGI handler answers it: a raw byte no client should send is a bad request, not a 500."""
    approval = make_approval(instance)
    sent = []

    async def scenario():
        async with wait_server(shared=shared) as (_, hub):

            async def receive():
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message):
                sent.append(message)

            await APP(asgi_scope(approval, b"timeout=\xff", runtime), receive, send)
            return hub.count

    assert run_async(scenario()) == 0
    assert sent[0]["status"] == 400


def test_a_server_that_cannot_wait_says_so_instead_of_holding_a_worker(instance, approver, tenant):
    """The same route under WSGI (gunicorn's sync workers, runserver, Django's test client): a PENDING
    approval with a timeout answers 503 wait_unavailable with Retry-After; what needs no waiting answers."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_api_key(tenant, ['runtime'], instance=instance)[1]}")
    approval = make_approval(instance)
    response = client.get(wait_url(approval, 10))
    assert_error(response, 503, "wait_unavailable", contains=["wait server"])
    assert response["Retry-After"] == "2"
    now = client.get(wait_url(approval, 0))
    assert (now.status_code, now[WAIT_HEADER], now.json()["status"]) == (200, "timeout", "PENDING")
    decide(approval, approver)
    done = client.get(wait_url(approval, 10))
    assert (done.status_code, done[WAIT_HEADER], done.json()["status"]) == (200, "decided", "APPROVED")
