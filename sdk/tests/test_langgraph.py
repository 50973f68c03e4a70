"""LangGraph end to end against a live ARM: a real graph (StateGraph, ToolNode, an in-memory
checkpointer) with a scripted chat model (no network). ARM allows, denies, and stops the graph with
``interrupt()`` for a person; resuming the thread finds the same approval through the idempotency key."""

from __future__ import annotations

import uuid

import pytest

pytest.importorskip("langgraph")

from langchain_core.language_models.chat_models import BaseChatModel  # noqa: E402
from langchain_core.messages import AIMessage, ToolMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402
from langgraph.graph import START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import tools_condition  # noqa: E402
from langgraph.types import Command  # noqa: E402

from arm_sdk import AsyncClient  # noqa: E402
from arm_sdk.langgraph import ArmToolCalls, tool_node, wait_for_approvals  # noqa: E402

RAN: list[tuple[str, dict]] = []


@tool
def crm_lookup(customer: str) -> str:
    """Look a customer up."""
    RAN.append(("crm_lookup", {"customer": customer}))
    return f"{customer}: gold tier"


@tool
def email_send(to: str, body: str) -> str:
    """Send an email."""
    RAN.append(("email_send", {"to": to, "body": body}))
    return f"sent to {to}"


@tool
def db_drop(table: str) -> str:
    """Drop a table."""
    RAN.append(("db_drop", {"table": table}))
    return "dropped"


class ScriptedModel(BaseChatModel):
    """A chat model that asks for the scripted tool calls first, then answers with what the tools said."""

    calls: list[dict]

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        if isinstance(messages[-1], ToolMessage):
            said = " | ".join(m.content for m in messages if isinstance(m, ToolMessage))
            reply = AIMessage(content=f"done: {said}")
        else:
            reply = AIMessage(content="", tool_calls=self.calls)
        return ChatResult(generations=[ChatGeneration(message=reply)])


def graph(model, tools):
    """The framework's own code: a model node, a tool node, a checkpointer."""
    builder = StateGraph(MessagesState)
    builder.add_node("model", lambda state: {"messages": [model.invoke(state["messages"])]})
    builder.add_node("tools", tools)
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition)
    builder.add_edge("tools", "model")
    return builder.compile(checkpointer=InMemorySaver())


def call(name, **args):
    return {"name": name, "args": args, "id": f"call-{uuid.uuid4().hex[:12]}", "type": "tool_call"}


def tool_messages(state) -> dict[str, ToolMessage]:
    return {m.name: m for m in state["messages"] if isinstance(m, ToolMessage)}


@pytest.fixture(autouse=True)
def clear_ran():
    RAN.clear()


def test_allowed_calls_run_and_denied_ones_answer_the_model_with_armss_reasons(arm, agent):
    model = ScriptedModel(calls=[call("crm_lookup", customer="c-1"), call("db_drop", table="customers")])
    with agent.client() as client:
        app = graph(model, tool_node([crm_lookup, db_drop], ArmToolCalls(client)))
        state = app.invoke({"messages": [("user", "look up c-1")]}, {"configurable": {"thread_id": "t-allow"}})
    messages = tool_messages(state)
    assert messages["crm_lookup"].content == "c-1: gold tier"
    assert messages["db_drop"].status == "error" and "tool_not_allowed" in messages["db_drop"].content
    assert RAN == [("crm_lookup", {"customer": "c-1"})]  # the denied tool never ran
    assert sorted(d["decision"] for d in arm.decisions(agent.instance)) == ["ALLOW", "DENY"]


@pytest.mark.wait
def test_an_approval_interrupts_the_graph_and_the_resumed_thread_runs_through_it(arm, agent, needs):
    model = ScriptedModel(calls=[call("email_send", to="ceo@example.com", body="quarterly numbers")])
    config = {"configurable": {"thread_id": f"t-{uuid.uuid4().hex}"}}
    with agent.client() as client:
        app = graph(model, tool_node([email_send], ArmToolCalls(client)))
        stopped = app.invoke({"messages": [("user", "mail the ceo")]}, config)
        [pause] = stopped["__interrupt__"]
        assert pause.value["tool"] == "email_send" and pause.value["risk"] == "high"
        assert RAN == []
        arm.decide(pause.value["arm_approval"], approve=True)
        [decided] = wait_for_approvals(stopped, client=client)
        assert decided["status"] == "APPROVED"
        needs("replay")  # the resumed tool node evaluates again with the same key
        state = app.invoke(Command(resume="decided in ARM"), config)
    assert tool_messages(state)["email_send"].content == "sent to ceo@example.com"
    assert RAN == [("email_send", {"to": "ceo@example.com", "body": "quarterly numbers"})]
    [approval] = arm.approvals(agent.instance)  # the resumed run opened no second request
    assert approval["id"] == pause.value["arm_approval"] and approval["used_at"]


def test_a_call_a_person_denies_is_answered_to_the_model_after_the_resume(arm, agent, needs):
    model = ScriptedModel(calls=[call("email_send", to="all@example.com", body="spam")])
    config = {"configurable": {"thread_id": f"t-{uuid.uuid4().hex}"}}
    with agent.client() as client:
        app = graph(model, tool_node([email_send], ArmToolCalls(client)))
        [pause] = app.invoke({"messages": [("user", "mail everyone")]}, config)["__interrupt__"]
        needs("replay")
        arm.decide(pause.value["arm_approval"], approve=False, note="no mass mail")
        state = app.invoke(Command(resume="decided in ARM"), config)
    message = tool_messages(state)["email_send"]
    assert message.status == "error" and "approval_denied" in message.content and RAN == []
    assert len(arm.approvals(agent.instance)) == 1


@pytest.mark.wait
def test_wait_mode_blocks_the_tool_until_a_person_decides(arm, agent):
    from test_contract import run_in_thread

    model = ScriptedModel(calls=[call("email_send", to="cfo@example.com", body="numbers")])
    config = {"configurable": {"thread_id": f"t-{uuid.uuid4().hex}"}}
    with agent.client() as client:
        app = graph(model, tool_node([email_send], ArmToolCalls(client, approval="wait")))
        running = run_in_thread(app.invoke, {"messages": [("user", "mail the cfo")]}, config)
        [pending] = arm.wait_for_pending(agent.instance)
        arm.decide(pending["id"], approve=True)
        state = running.result(timeout=60)
    assert tool_messages(state)["email_send"].content == "sent to cfo@example.com"
    assert RAN == [("email_send", {"to": "cfo@example.com", "body": "numbers"})]


@pytest.mark.anyio
async def test_the_async_graph_uses_the_async_client(arm, agent):
    model = ScriptedModel(calls=[call("crm_lookup", customer="c-9")])
    async with AsyncClient(arm.url, agent.runtime_key, agent.instance) as client:
        app = graph(model, tool_node([crm_lookup], ArmToolCalls(async_client=client)))
        state = await app.ainvoke({"messages": [("user", "c-9?")]}, {"configurable": {"thread_id": "async"}})
    assert tool_messages(state)["crm_lookup"].content == "c-9: gold tier"
    assert [d["decision"] for d in arm.decisions(agent.instance)] == ["ALLOW"]


class TestResumeAgainstTheProtocolsRules:
    """The interrupt → resume path against ``ContractArm`` (the protocol's idempotency rules, in memory), so
    it is tested before a live ARM has replay; the live tests above run it end to end once ARM does."""

    def run(self, contract, approve):
        from fake_arm import Recorder

        model = ScriptedModel(calls=[call("email_send", to="ceo@example.com", body="numbers")])
        client = Recorder(contract).client()
        config = {"configurable": {"thread_id": "t-contract"}}
        app = graph(model, tool_node([email_send], ArmToolCalls(client)))
        [pause] = app.invoke({"messages": [("user", "mail the ceo")]}, config)["__interrupt__"]
        still = app.invoke(Command(resume="too early"), config)  # resumed before anyone decided
        [again] = still["__interrupt__"]
        assert again.value["arm_approval"] == pause.value["arm_approval"] and RAN == []
        contract.decide(pause.value["arm_approval"], approve=approve)
        return pause, app.invoke(Command(resume="decided"), config)

    def test_an_approved_call_runs_once_and_opens_no_second_request(self):
        from fake_arm import ContractArm

        contract = ContractArm()
        pause, state = self.run(contract, approve=True)
        assert tool_messages(state)["email_send"].content == "sent to ceo@example.com"
        assert RAN == [("email_send", {"to": "ceo@example.com", "body": "numbers"})]
        assert list(contract.approvals) == [pause.value["arm_approval"]]
        assert len({e["idempotency_key"] for e in contract.evaluations}) == 1

    def test_a_denied_call_answers_the_model_and_never_runs(self):
        from fake_arm import ContractArm

        contract = ContractArm()
        _, state = self.run(contract, approve=False)
        message = tool_messages(state)["email_send"]
        assert message.status == "error" and "approval_denied" in message.content and RAN == []
        assert len(contract.approvals) == 1

    @pytest.mark.anyio
    async def test_the_async_graph_resumes_through_the_approval_too(self):
        from fake_arm import ContractArm, Recorder

        contract = ContractArm()
        model = ScriptedModel(calls=[call("email_send", to="cto@example.com", body="plan")])
        client = Recorder(contract).async_client()
        config = {"configurable": {"thread_id": "t-async-contract"}}
        app = graph(model, tool_node([email_send], ArmToolCalls(async_client=client)))
        [pause] = (await app.ainvoke({"messages": [("user", "mail the cto")]}, config))["__interrupt__"]
        contract.decide(pause.value["arm_approval"], approve=True)
        state = await app.ainvoke(Command(resume="decided"), config)
        assert tool_messages(state)["email_send"].content == "sent to cto@example.com"
        assert RAN == [("email_send", {"to": "cto@example.com", "body": "plan"})] and len(contract.approvals) == 1
