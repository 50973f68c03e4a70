"""OpenAI Agents SDK end to end against a live ARM: a real ``Agent`` and ``Runner`` with a fake ``Model``
(no network, tracing off). ARM's tool input guardrail lets allowed calls run, rejects denied ones with
ARM's reasons, and waits for a person on an approval."""

from __future__ import annotations

import json
import uuid

import pytest

pytest.importorskip("agents")

from agents import (  # noqa: E402
    Agent,
    ModelResponse,
    RunConfig,
    Runner,
    ToolInputGuardrailTripwireTriggered,
    Usage,
    function_tool,
)
from agents.models.interface import Model  # noqa: E402
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText  # noqa: E402

from arm_sdk import AsyncClient  # noqa: E402
from arm_sdk.openai_agents import guard_agent  # noqa: E402

RAN: list[tuple[str, dict]] = []
NO_TRACING = RunConfig(tracing_disabled=True)


class ScriptedModel(Model):
    """Asks for the scripted tool calls, then answers with the tools' outputs."""

    def __init__(self, calls: list[tuple[str, dict]]) -> None:
        self.calls = [(name, args, f"call-{uuid.uuid4().hex[:12]}") for name, args in calls]

    async def get_response(
        self, system_instructions, input, model_settings, tools, output_schema, handoffs, tracing, **_
    ):
        items = input if isinstance(input, list) else []
        outputs = [i for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"]
        if outputs:
            text = " | ".join(str(o["output"]) for o in outputs)
            message = ResponseOutputMessage(
                id="msg-1",
                type="message",
                role="assistant",
                status="completed",
                content=[ResponseOutputText(text=f"done: {text}", type="output_text", annotations=[])],
            )
            return ModelResponse(output=[message], usage=Usage(), response_id=None)
        calls = [
            ResponseFunctionToolCall(
                id=cid,
                call_id=cid,
                type="function_call",
                name=name,
                arguments=args if isinstance(args, str) else json.dumps(args),
            )
            for name, args, cid in self.calls
        ]
        return ModelResponse(output=calls, usage=Usage(), response_id=None)

    def stream_response(self, *args, **kwargs):
        raise NotImplementedError


@function_tool
def crm_lookup(customer: str) -> str:
    """Look a customer up."""
    RAN.append(("crm_lookup", {"customer": customer}))
    return f"{customer}: gold tier"


@function_tool
def email_send(to: str, body: str) -> str:
    """Send an email."""
    RAN.append(("email_send", {"to": to, "body": body}))
    return f"sent to {to}"


@function_tool
def db_drop(table: str) -> str:
    """Drop a table."""
    RAN.append(("db_drop", {"table": table}))
    return "dropped"


@pytest.fixture(autouse=True)
def clean():
    RAN.clear()
    for tool in (crm_lookup, email_send, db_drop):
        tool.tool_input_guardrails = None


def run(agent_, prompt):
    return Runner.run(agent_, prompt, run_config=NO_TRACING)


@pytest.mark.anyio
async def test_allowed_calls_run_and_denied_ones_are_rejected_with_armss_reasons(arm, agent):
    model = ScriptedModel([("crm_lookup", {"customer": "c-1"}), ("db_drop", {"table": "customers"})])
    async with AsyncClient(arm.url, agent.runtime_key, agent.instance) as client:
        support = guard_agent(Agent(name="support", model=model, tools=[crm_lookup, db_drop]), client=client)
        result = await run(support, "look up c-1")
    assert "c-1: gold tier" in result.final_output and "tool_not_allowed" in result.final_output
    assert RAN == [("crm_lookup", {"customer": "c-1"})]
    assert sorted(d["decision"] for d in arm.decisions(agent.instance)) == ["ALLOW", "DENY"]


@pytest.mark.wait
@pytest.mark.anyio
async def test_an_approval_holds_the_call_until_a_person_approves(arm, agent):
    from test_contract import run_in_thread

    model = ScriptedModel([("email_send", {"to": "ceo@example.com", "body": "numbers"})])
    async with AsyncClient(arm.url, agent.runtime_key, agent.instance) as client:
        support = guard_agent(Agent(name="support", model=model, tools=[email_send]), client=client)

        def approve():
            [pending] = arm.wait_for_pending(agent.instance)
            assert pending["params"] == {"to": "ceo@example.com", "body": "numbers"}
            arm.decide(pending["id"], approve=True)

        person = run_in_thread(approve)
        result = await run(support, "mail the ceo")
        person.result(timeout=60)
    assert "sent to ceo@example.com" in result.final_output
    assert RAN == [("email_send", {"to": "ceo@example.com", "body": "numbers"})]
    [approval] = arm.approvals(agent.instance)
    assert approval["used_at"]


@pytest.mark.anyio
async def test_a_call_a_person_denies_is_rejected_and_on_deny_raise_ends_the_run(arm, agent):
    from test_contract import run_in_thread

    model = ScriptedModel([("email_send", {"to": "all@example.com", "body": "spam"})])
    async with AsyncClient(arm.url, agent.runtime_key, agent.instance) as client:
        support = guard_agent(Agent(name="support", model=model, tools=[email_send]), client=client)
        person = run_in_thread(lambda: arm.decide(arm.wait_for_pending(agent.instance)[0]["id"], approve=False))
        result = await run(support, "mail everyone")
        person.result(timeout=60)
        assert "approval_denied" in result.final_output and RAN == []

        strict = guard_agent(
            Agent(name="strict", model=ScriptedModel([("db_drop", {"table": "t"})]), tools=[db_drop]),
            client=client,
            on_deny="raise",
        )
        with pytest.raises(ToolInputGuardrailTripwireTriggered):
            await run(strict, "drop it")
    assert RAN == []


@pytest.mark.anyio
async def test_arguments_that_are_not_a_json_object_are_rejected_without_asking_arm(arm, agent):
    model = ScriptedModel([("crm_lookup", "{not json")])
    async with AsyncClient(arm.url, agent.runtime_key, agent.instance) as client:
        support = guard_agent(Agent(name="support", model=model, tools=[crm_lookup]), client=client)
        result = await run(support, "look up")
    assert "not a JSON object" in result.final_output and RAN == []
    assert arm.decisions(agent.instance) == []
