"""pydantic-ai end to end against a live ARM: a real ``Agent`` with a ``FunctionModel`` (no network).
ARM's capability lets allowed calls run, answers denied ones with ARM's reasons, and turns an approval
into a deferred, approval-required call: waited for in the run (``HandleDeferredToolCalls``), or ending
the run with ``DeferredToolRequests`` and resumed with ``approval_results``, with no second request."""

from __future__ import annotations

import uuid

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.capabilities import HandleDeferredToolCalls  # noqa: E402
from pydantic_ai.messages import ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart  # noqa: E402
from pydantic_ai.models.function import AgentInfo, FunctionModel  # noqa: E402
from pydantic_ai.tools import DeferredToolRequests  # noqa: E402

from arm_sdk import AsyncClient  # noqa: E402
from arm_sdk.pydantic_ai import ArmGuard, approval_results, wait_for_approvals  # noqa: E402

RAN: list[tuple[str, dict]] = []


def crm_lookup(customer: str) -> str:
    """Look a customer up."""
    RAN.append(("crm_lookup", {"customer": customer}))
    return f"{customer}: gold tier"


def email_send(to: str, body: str) -> str:
    """Send an email."""
    RAN.append(("email_send", {"to": to, "body": body}))
    return f"sent to {to}"


def db_drop(table: str) -> str:
    """Drop a table."""
    RAN.append(("db_drop", {"table": table}))
    return "dropped"


def scripted(*calls: tuple[str, dict]) -> FunctionModel:
    """Asks for the calls, then answers with what the tools returned."""
    ids = [f"call-{uuid.uuid4().hex[:12]}" for _ in calls]

    def respond(messages, info: AgentInfo) -> ModelResponse:
        returns = [
            part
            for message in messages
            if isinstance(message, ModelRequest)
            for part in message.parts
            if isinstance(part, ToolReturnPart)
        ]
        if returns:
            return ModelResponse(parts=[TextPart("done: " + " | ".join(str(p.content) for p in returns))])
        parts = [ToolCallPart(name, args, cid) for (name, args), cid in zip(calls, ids, strict=True)]
        return ModelResponse(parts=parts)

    return FunctionModel(respond)


@pytest.fixture(autouse=True)
def clear_ran():
    RAN.clear()


@pytest.mark.anyio
async def test_allowed_calls_run_and_denied_ones_answer_the_model_with_armss_reasons(arm, agent):
    model = scripted(("crm_lookup", {"customer": "c-1"}), ("db_drop", {"table": "customers"}))
    async with AsyncClient(arm.url, agent.runtime_key, agent.instance) as client:
        support = Agent(model, tools=[crm_lookup, db_drop], capabilities=[ArmGuard(client)])
        result = await support.run("look up c-1")
    assert "c-1: gold tier" in result.output and "ARM refused this call of db_drop: tool_not_allowed" in result.output
    assert RAN == [("crm_lookup", {"customer": "c-1"})]
    assert sorted(d["decision"] for d in arm.decisions(agent.instance)) == ["ALLOW", "DENY"]


@pytest.mark.wait
@pytest.mark.anyio
async def test_the_run_waits_in_place_for_a_person_then_the_call_runs_through_the_approval(arm, agent):
    from test_contract import run_in_thread

    model = scripted(("email_send", {"to": "ceo@example.com", "body": "numbers"}))
    async with AsyncClient(arm.url, agent.runtime_key, agent.instance) as client:
        support = Agent(
            model,
            tools=[email_send],
            capabilities=[ArmGuard(client), HandleDeferredToolCalls(handler=wait_for_approvals(client=client))],
        )
        person = run_in_thread(lambda: arm.decide(arm.wait_for_pending(agent.instance)[0]["id"], approve=True))
        result = await support.run("mail the ceo")
        person.result(timeout=60)
    assert "sent to ceo@example.com" in result.output
    assert RAN == [("email_send", {"to": "ceo@example.com", "body": "numbers"})]
    [approval] = arm.approvals(agent.instance)  # one request, used by the resumed call
    assert approval["used_at"]
    assert sorted(d["decision"] for d in arm.decisions(agent.instance)) == ["ALLOW", "NEEDS_APPROVAL"]


@pytest.mark.wait
@pytest.mark.anyio
async def test_a_run_ended_on_an_approval_resumes_later_without_a_second_request(arm, agent):
    model = scripted(("email_send", {"to": "cfo@example.com", "body": "forecast"}))
    async with AsyncClient(arm.url, agent.runtime_key, agent.instance) as client:
        support = Agent(
            model, tools=[email_send], capabilities=[ArmGuard(client)], output_type=[str, DeferredToolRequests]
        )
        first = await support.run("mail the cfo")
        assert isinstance(first.output, DeferredToolRequests) and RAN == []
        [call] = first.output.approvals
        approval_id = first.output.metadata[call.tool_call_id]["arm_approval"]
        arm.decide(approval_id, approve=True)
        results = await approval_results(first.output, client=client)
        second = await support.run(message_history=first.all_messages(), deferred_tool_results=results)
    assert "sent to cfo@example.com" in second.output
    assert RAN == [("email_send", {"to": "cfo@example.com", "body": "forecast"})]
    assert [a["id"] for a in arm.approvals(agent.instance)] == [approval_id]


@pytest.mark.anyio
async def test_a_call_a_person_denies_is_answered_with_armss_reason(arm, agent):
    model = scripted(("email_send", {"to": "all@example.com", "body": "spam"}))
    async with AsyncClient(arm.url, agent.runtime_key, agent.instance) as client:
        support = Agent(
            model, tools=[email_send], capabilities=[ArmGuard(client)], output_type=[str, DeferredToolRequests]
        )
        first = await support.run("mail everyone")
        [call] = first.output.approvals
        arm.decide(first.output.metadata[call.tool_call_id]["arm_approval"], approve=False, note="no mass mail")
        results = await approval_results(first.output, client=client)
        second = await support.run(message_history=first.all_messages(), deferred_tool_results=results)
    assert "denied" in second.output and "no mass mail" in second.output and RAN == []
