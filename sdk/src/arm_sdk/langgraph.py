"""LangGraph: every tool call a ``ToolNode`` runs is asked of ARM first (``pip install "arm-sdk[langgraph]"``).

    from arm_sdk.langgraph import tool_node, wait_for_approvals
    agent = create_react_agent(model, tool_node([crm_lookup, send_email]), checkpointer=saver)
    state = agent.invoke(inputs, config)
    wait_for_approvals(state)                    # stopped on an approval: until people decide in ARM
    state = agent.invoke(Command(resume=True), config)

``tool_node(tools)`` is LangGraph's ``ToolNode`` with ARM's ``ArmToolCalls`` as its ``wrap_tool_call`` /
``awrap_tool_call`` (pass ``ToolNode(..., wrap_tool_call=guard, awrap_tool_call=guard.awrap)`` yourself to
combine it with other wrappers). For each call:

- ALLOW: the tool runs. DENY: the model gets an error ``ToolMessage`` with ARM's reasons (``on_deny="raise"``
  raises ``Denied`` instead).
- NEEDS_APPROVAL, ``approval="interrupt"`` (default): the graph stops with ``interrupt()`` and a payload
  ``{"arm_approval": id, "tool", "params", "risk", "reasons", "instance"}``; once a person has decided it in
  ARM, resume the thread (``Command(resume=...)``, any value). LangGraph runs the tool node again from the
  top; the idempotency key is derived from the thread id and the tool call id, so the evaluation finds the
  same approval (ARM answers ALLOW through it, or DENY when it was denied), and no second request is
  opened. Resumed while still pending: it interrupts again. ``approval="wait"`` blocks instead until the
  person decides (``timeout`` seconds at most).

The framework's tool name is the call name ARM's evaluate takes (``email_send`` for ``email.send``);
``tools={"framework name": "manifest name"}`` maps names that differ otherwise. ``data_scopes`` and
``estimate`` are per-tool mappings (``estimate`` values may be callables of the call's args).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from langchain_core.messages import ToolMessage
from langgraph.prebuilt import ToolNode
from langgraph.types import interrupt

from ._flow import denied
from .client import AsyncClient, Client
from .errors import ArmError, Denied
from .guard import default_async_client, default_client
from .models import ALLOW, DENY, NEEDS_APPROVAL, Decision

Approval = Literal["interrupt", "wait"]


class ArmToolCalls:
    """A ``ToolNode`` tool-call wrapper that asks ARM before each call (see the module docstring)."""

    def __init__(
        self,
        client: Client | None = None,
        async_client: AsyncClient | None = None,
        *,
        instance: str | None = None,
        tools: Mapping[str, str] | None = None,
        data_scopes: Mapping[str, Sequence[str]] | None = None,
        estimate: Mapping[str, Any] | None = None,
        approval: Approval = "interrupt",
        timeout: float | None = None,
        on_deny: Literal["message", "raise"] = "message",
    ) -> None:
        self.client = client
        self.async_client = async_client
        self.instance = instance
        self.tools = dict(tools or {})
        self.data_scopes = dict(data_scopes or {})
        self.estimate = dict(estimate or {})
        self.approval = approval
        self.timeout = timeout
        self.on_deny = on_deny

    # -- what a call is, for ARM
    def _ask(self, request) -> dict:
        call = request.tool_call
        name = call["name"]
        args = call.get("args") or {}
        config = getattr(request.runtime, "config", None) or {}
        thread = (config.get("configurable") or {}).get("thread_id")
        estimate = self.estimate.get(name)
        return {
            "tool": self.tools.get(name, name),
            "params": args,
            "instance": self.instance,
            "data_scopes": self.data_scopes.get(name),
            "estimated_cost_usd": estimate(args) if callable(estimate) else estimate,
            "run_id": f"{thread}/{call['id']}" if thread is not None else str(call["id"]),
        }

    def _refused(self, request, error: Denied) -> ToolMessage:
        if self.on_deny == "raise":
            raise error
        call = request.tool_call
        reasons = "; ".join(f"{r.code}: {r.message}" for r in error.reasons) or error.message
        return ToolMessage(
            content=f"ARM refused this call of {call['name']}: {reasons}",
            name=call["name"],
            tool_call_id=call["id"],
            status="error",
        )

    @staticmethod
    def _interrupt_payload(ask: dict, decision: Decision) -> dict:
        return {
            "arm_approval": decision.approval,
            "tool": ask["tool"],
            "params": ask["params"],
            "risk": decision.risk,
            "reasons": [{"code": r.code, "message": r.message} for r in decision.reasons],
            "instance": ask["instance"],
        }

    def _refusal(self, request, decision: Decision) -> ToolMessage | None:
        """None for an ALLOW (the tool runs); the model's error message for a DENY."""
        if decision.decision == ALLOW:
            return None
        if decision.decision == DENY:
            return self._refused(request, denied(decision))
        raise ArmError(f"ARM answered an unknown decision {decision.decision!r}.", code="unknown_decision")

    # -- sync
    def __call__(self, request, execute: Callable):
        client = self.client or default_client()
        ask = self._ask(request)
        if self.approval == "wait":
            try:
                client.guard(**ask, wait=True, timeout=self.timeout)
            except Denied as error:
                return self._refused(request, error)
            return execute(request)
        ask["instance"] = client.instance_for(ask["instance"])
        decision = client.evaluate(**ask)
        while decision.decision == NEEDS_APPROVAL:
            interrupt(self._interrupt_payload(ask, decision))
            decision = client.evaluate(**ask, approval=decision.approval)
        refusal = self._refusal(request, decision)
        return refusal if refusal is not None else execute(request)

    # -- async
    async def awrap(self, request, execute: Callable):
        client = self.async_client or default_async_client()
        ask = self._ask(request)
        if self.approval == "wait":
            try:
                await client.guard(**ask, wait=True, timeout=self.timeout)
            except Denied as error:
                return self._refused(request, error)
            return await execute(request)
        ask["instance"] = client.instance_for(ask["instance"])
        decision = await client.evaluate(**ask)
        while decision.decision == NEEDS_APPROVAL:
            interrupt(self._interrupt_payload(ask, decision))
            decision = await client.evaluate(**ask, approval=decision.approval)
        refusal = self._refusal(request, decision)
        return refusal if refusal is not None else await execute(request)


def wait_for_approvals(stopped: Any, *, client: Client | None = None, timeout: float | None = None) -> list[dict]:
    """Waits in ARM for the approvals a stopped graph asks for: ``stopped`` is what ``invoke`` returned (its
    ``__interrupt__``) or a list of ``Interrupt``s. Returns the approvals, decided (or as they stand at
    ``timeout``); then resume the thread."""
    interrupts = stopped.get("__interrupt__", ()) if isinstance(stopped, dict) else stopped
    client = client or default_client()
    return [
        client.wait_for_approval(pause.value["arm_approval"], timeout=timeout)
        for pause in interrupts
        if isinstance(getattr(pause, "value", None), dict) and pause.value.get("arm_approval")
    ]


def tool_node(tools: Sequence[Any], guard: ArmToolCalls | None = None, **node_options: Any) -> ToolNode:
    """LangGraph's ``ToolNode`` over ``tools`` with ARM asked before every call."""
    guard = guard or ArmToolCalls()
    return ToolNode(tools, wrap_tool_call=guard, awrap_tool_call=guard.awrap, **node_options)


__all__ = ["ArmToolCalls", "tool_node", "wait_for_approvals"]
