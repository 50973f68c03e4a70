"""The SDK against a live ARM (the runtime protocol, docs: /work/notes/protocol_24.md in the team's notes,
and SPEC §11): allow; wait for a person, then run; deny; denied by a person; a retried ALLOW spends
once; a resumed call finds its approval instead of opening a second one. A test of a part of the protocol
the server lacks skips, naming it (``needs``)."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from arm_sdk import (
    ApprovalDenied,
    ApprovalPending,
    ApprovalWithdrawn,
    AsyncClient,
    Client,
    Denied,
    Forbidden,
    IdempotencyConflict,
)


def run_in_thread(fn, *args, **kwargs):
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(fn, *args, **kwargs)
    pool.shutdown(wait=False)
    return future


def test_an_allowed_call_runs_and_its_decision_is_recorded(arm, agent):
    with agent.client() as client:
        decision = client.guard("crm_lookup", {"customer": "c-1"}, data_scopes=["crm:read"])
    assert decision.allowed and decision.codes == ("tier_allows",)
    [row] = arm.decisions(agent.instance)
    assert row["id"] == decision.decision_id and row["decision"] == "ALLOW" and row["tool"] == "crm_lookup"


@pytest.mark.wait
def test_a_high_risk_call_waits_for_a_person_then_runs_through_the_approval(arm, agent):
    with agent.client() as client:
        waiting = run_in_thread(client.guard, "email_send", {"to": "ceo@example.com", "body": "hello"})
        [pending] = arm.wait_for_pending(agent.instance)
        assert pending["tool"] == "email_send" and pending["params"] == {"to": "ceo@example.com", "body": "hello"}
        arm.decide(pending["id"], approve=True, note="fine")
        decision = waiting.result(timeout=60)
    assert decision.allowed and decision.approval == pending["id"]
    assert "approval_granted" in decision.codes
    [approval] = arm.approvals(agent.instance)  # one request, now used: no second one was opened
    assert approval["status"] == "APPROVED" and approval["used_at"]
    kinds = sorted(row["decision"] for row in arm.decisions(agent.instance))
    assert kinds == ["ALLOW", "NEEDS_APPROVAL"]


class CountingTransport(httpx.HTTPTransport):
    def __init__(self):
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request):
        self.paths.append(request.url.path)
        return super().handle_request(request)


@pytest.mark.wait
def test_the_guard_waits_on_the_long_poll_without_polling(arm, agent, needs):
    needs("wait")
    transport = CountingTransport()
    http = httpx.Client(base_url=arm.url, transport=transport)
    with Client(arm.url, agent.runtime_key, agent.instance, http=http) as client:
        waiting = run_in_thread(client.guard, "email_send", {"to": "wait@example.com"})
        [pending] = arm.wait_for_pending(agent.instance)
        arm.decide(pending["id"], approve=True)
        assert waiting.result(timeout=60).allowed
    waits = [p for p in transport.paths if p.endswith("/wait/")]
    # one long-poll, answered by the decision (a missed wake-up answers at its timeout and waits again)
    assert len(waits) == 1 and f"/api/v1/approvals/{pending['id']}/" not in transport.paths  # never polled


@pytest.mark.wait
def test_a_held_wait_is_answered_by_the_decision_not_at_its_timeout(arm, agent, needs):
    """What wakes a held wait: on PostgreSQL the decision's NOTIFY, on SQLite the wait server's poller."""
    needs("wait")
    with agent.client() as client:
        with pytest.raises(ApprovalPending) as raised:
            client.guard("email_send", {"to": "held@example.com"}, wait=False)
        approval = raised.value.approval_id
        path = f"/api/v1/approvals/{approval}/wait/"
        held = run_in_thread(client.request, "GET", path, params={"timeout": 60}, timeout=90)
        time.sleep(1)  # the server reads the approval and holds the wait meanwhile
        arm.decide(approval, approve=True)
        reply = held.result(timeout=90)
    assert reply.status == 200 and reply.headers["X-ARM-Wait"] == "decided"
    assert reply.data["status"] == "APPROVED"


def test_a_call_the_policy_forbids_raises_denied_with_armss_reasons(arm, agent):
    with agent.client() as client, pytest.raises(Denied) as raised:
        client.guard("db_drop", {"table": "customers"})
    error = raised.value
    assert error.code == "tool_not_allowed" and error.reasons[0].code == "tool_not_allowed"
    assert error.decision.decision == "DENY" and error.decision.decision_id == arm.decisions(agent.instance)[0]["id"]
    assert not isinstance(error, ApprovalDenied)


@pytest.mark.wait
def test_a_call_a_person_denies_raises_approval_denied_with_the_note(arm, agent):
    with agent.client() as client:
        waiting = run_in_thread(client.guard, "refund_issue", {"order": "o-9", "amount": "900.00"})
        [pending] = arm.wait_for_pending(agent.instance)
        arm.decide(pending["id"], approve=False, note="too large")
        with pytest.raises(ApprovalDenied) as raised:
            waiting.result(timeout=60)
    assert raised.value.code == "approval_denied" and "too large" in raised.value.message
    assert raised.value.decision.approval == pending["id"]
    assert [a["status"] for a in arm.approvals(agent.instance)] == ["DENIED"]


class LoseFirstAnswer(httpx.HTTPTransport):
    """Sends each request to ARM; the first evaluation's answer is lost on the way back (a read timeout
    after ARM committed it), as happens when a connection breaks."""

    def __init__(self):
        super().__init__()
        self.lost = 0

    def handle_request(self, request):
        response = super().handle_request(request)
        if request.url.path.endswith("/policy/evaluate/") and not self.lost:
            response.read()
            self.lost += 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_a_retried_allow_is_answered_from_its_record_and_spends_once(arm, needs):
    needs("replay")
    agent = arm.agent(cost_limit_daily_usd="1.30")
    transport = LoseFirstAnswer()
    http = httpx.Client(base_url=arm.url, transport=transport)
    with Client(arm.url, agent.runtime_key, agent.instance, http=http, backoff=0.01) as client:
        decision = client.guard("crm_lookup", {"customer": "c-2"}, estimated_cost_usd="0.60")
        assert transport.lost == 1 and decision.allowed and decision.replay
        [row] = arm.decisions(agent.instance)  # the retry made no second decision
        assert row["id"] == decision.decision_id
        # 0.60 was counted once: another 0.60 fits under 1.30 (had the retry spent again, 1.80 would not)
        assert client.guard("crm_lookup", {"customer": "c-3"}, estimated_cost_usd="0.60").allowed
        with pytest.raises(Denied) as raised:
            client.guard("crm_lookup", {"customer": "c-4"}, estimated_cost_usd="0.60")
        assert raised.value.code == "cost_limit"


@pytest.mark.wait
def test_a_resumed_run_finds_its_approval_and_opens_no_second_request(arm, agent, needs):
    needs("replay")
    run = f"thread-{uuid.uuid4().hex}"
    params = {"to": "ops@example.com", "body": "restart"}
    with agent.client() as client:
        with pytest.raises(ApprovalPending) as raised:
            client.guard("email_send", params, run_id=run, wait=False)
        arm.decide(raised.value.approval_id, approve=True)
    # Another process resumes the run: same instance, tool, params and run id, so the same key.
    with agent.client() as resumed:
        decision = resumed.guard("email_send", params, run_id=run, wait=False)
        assert decision.allowed and decision.approval == raised.value.approval_id and not decision.replay
        again = resumed.guard("email_send", params, run_id=run, wait=False)  # the run replayed once more
        assert again.replay and again.decision_id == decision.decision_id
    assert [a["id"] for a in arm.approvals(agent.instance)] == [raised.value.approval_id]


def test_the_same_key_for_a_different_call_is_a_conflict(agent, needs):
    needs("replay")
    with agent.client() as client:
        client.guard("crm_lookup", {"customer": "c-5"}, idempotency_key="fixed-key")
        with pytest.raises(IdempotencyConflict):
            client.guard("crm_lookup", {"customer": "c-6"}, idempotency_key="fixed-key")


@pytest.mark.wait
def test_parallel_calls_get_their_own_approvals(arm, agent):
    with agent.client() as client:
        first = run_in_thread(client.guard, "email_send", {"to": "a@example.com"}, timeout=60)
        second = run_in_thread(client.guard, "email_send", {"to": "b@example.com"}, timeout=60)
        pending = arm.wait_for_pending(agent.instance, count=2)
        for approval in pending:
            arm.decide(approval["id"], approve=True)
        assert first.result(timeout=60).allowed and second.result(timeout=60).allowed
    assert len({a["id"] for a in arm.approvals(agent.instance)}) == 2


@pytest.mark.wait
def test_a_runtime_may_withdraw_its_pending_request(arm, agent, needs):
    needs("withdraw")
    with agent.client() as client:
        waiting = run_in_thread(client.guard, "email_send", {"to": "x@example.com"})
        [pending] = arm.wait_for_pending(agent.instance)
        withdrawn = client.withdraw(pending["id"], note="no longer needed")
        assert withdrawn["status"] == "WITHDRAWN"
        with pytest.raises(ApprovalWithdrawn):
            waiting.result(timeout=60)


def test_the_runtime_context_names_the_instance_tools_and_policy(agent, needs):
    needs("runtime_context")
    with agent.client() as client:
        context = client.runtime_context()
    assert context["instance"]["id"] == agent.instance
    tools = {t["name"]: t["call_name"] for t in context["version"]["tools"]}
    assert tools["ticket.close"] == "ticket_close"
    assert context["policy"]["id"] == agent.policy and context["policy"]["tools"]["db_drop"] == "deny"


def test_a_tool_is_evaluated_by_its_call_name(arm, agent, needs):
    needs("call_names")
    with agent.client() as client:
        decision = client.evaluate("ticket_close", {"ticket": "t-1"})
    assert decision.decision == "NEEDS_APPROVAL"
    [approval] = arm.approvals(agent.instance)
    assert approval["tool"] == "ticket.close"  # decisions and approvals use the manifest name


def test_a_key_bound_to_another_instance_is_refused(arm, agent):
    other = arm.agent()
    with Client(arm.url, agent.runtime_key, other.instance) as client, pytest.raises(Forbidden) as raised:
        client.guard("crm_lookup", {})
    assert raised.value.code == "instance_binding" and raised.value.status == 403


@pytest.mark.wait
@pytest.mark.anyio
async def test_the_async_client_waits_for_the_person_too(arm, agent):
    async with AsyncClient(arm.url, agent.runtime_key, agent.instance) as client:
        decided = threading.Event()

        def approve():
            [pending] = arm.wait_for_pending(agent.instance)
            arm.decide(pending["id"], approve=True)
            decided.set()

        helper = run_in_thread(approve)
        decision = await client.guard("email_send", {"to": "async@example.com"}, timeout=60)
        helper.result(timeout=60)
    assert decided.is_set() and decision.allowed and "approval_granted" in decision.codes
