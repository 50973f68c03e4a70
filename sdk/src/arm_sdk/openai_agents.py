"""OpenAI Agents SDK: a tool input guardrail that asks ARM before each function tool runs
(``pip install "arm-sdk[openai-agents]"``).

    from arm_sdk.openai_agents import guard_agent
    agent = guard_agent(Agent(name="support", tools=[crm_lookup, send_email]))

``guard_agent(agent)`` adds ``arm_guardrail()`` to the ``tool_input_guardrails`` of every ``FunctionTool``
of the agent (or pass ``tool_input_guardrails=[arm_guardrail()]`` to ``@function_tool`` yourself). For each
call:

- ALLOW: the tool runs.
- DENY: the call is rejected and the model gets ARM's reasons as the tool's output (``on_deny="raise"``
  trips the guardrail instead: ``ToolInputGuardrailTripwireTriggered`` ends the run).
- NEEDS_APPROVAL: the guardrail waits (non-blocking: ``AsyncClient``, the long-poll wait endpoint) until a
  person decides in ARM, then asks again with the same idempotency key and the tool runs (approved) or is
  rejected (denied, expired, withdrawn). At ``timeout`` seconds (None: until the approval expires) the call
  is rejected with the approval's id; it stays open in ARM.

The idempotency key is derived from the model's tool call id, so a run resumed from a saved ``RunState``
asks about the same call. The framework's tool name is the call name ARM's evaluate takes; ``tools=``
maps names that differ otherwise; ``instances={agent name: instance id}`` serves a process hosting many
agents (else ``instance=``, the context's, or ``ARM_INSTANCE_ID``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from agents import Agent, FunctionTool, ToolGuardrailFunctionOutput, ToolInputGuardrail, ToolInputGuardrailData

from .client import AsyncClient
from .errors import ApprovalTimeout, Denied
from .guard import default_async_client

GUARDRAIL_NAME = "arm"


def arm_guardrail(
    client: AsyncClient | None = None,
    *,
    instance: str | None = None,
    instances: Mapping[str, str] | None = None,
    tools: Mapping[str, str] | None = None,
    data_scopes: Mapping[str, Sequence[str]] | None = None,
    estimate: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    on_deny: Literal["reject", "raise"] = "reject",
) -> ToolInputGuardrail:
    """The guardrail (see the module docstring)."""
    tools, data_scopes, estimate, instances = (
        dict(tools or {}),
        dict(data_scopes or {}),
        dict(estimate or {}),
        dict(instances or {}),
    )

    async def arm(data: ToolInputGuardrailData) -> ToolGuardrailFunctionOutput:
        ctx = data.context
        name = ctx.tool_name
        try:
            args = json.loads(ctx.tool_arguments or "{}")
        except ValueError:
            args = None
        if not isinstance(args, dict):  # nothing ARM could be asked about: the tool does not run
            return ToolGuardrailFunctionOutput.reject_content(
                f"ARM: the arguments of this call of {name} are not a JSON object; it was not run."
            )
        cost = estimate.get(name)
        agent_name = getattr(data.agent, "name", None)
        try:
            decision = await (client or default_async_client()).guard(
                tools.get(name, name),
                args,
                instance=instances.get(agent_name, instance) if agent_name else instance,
                data_scopes=data_scopes.get(name),
                estimated_cost_usd=cost(args) if callable(cost) else cost,
                run_id=ctx.tool_call_id,
                timeout=timeout,
            )
        except ApprovalTimeout as pending:
            message = f"ARM: approval {pending.approval_id} for this call of {name} is still pending; try later."
            return ToolGuardrailFunctionOutput.reject_content(message, output_info={"approval": pending.approval_id})
        except Denied as error:
            info = {"code": error.code, "reasons": [r.message for r in error.reasons]}
            if on_deny == "raise":
                return ToolGuardrailFunctionOutput.raise_exception(output_info=info)
            reasons = "; ".join(f"{r.code}: {r.message}" for r in error.reasons) or error.message
            return ToolGuardrailFunctionOutput.reject_content(f"ARM refused this call of {name}: {reasons}", info)
        return ToolGuardrailFunctionOutput.allow(output_info={"decision_id": decision.decision_id})

    return ToolInputGuardrail(guardrail_function=arm, name=GUARDRAIL_NAME)


def guard_agent(agent: Agent, guardrail: ToolInputGuardrail | None = None, **options: Any) -> Agent:
    """Adds ARM's guardrail (``guardrail``, else ``arm_guardrail(**options)``) to each function tool of
    ``agent``, once; returns the agent."""
    guardrail = guardrail or arm_guardrail(**options)
    for tool in agent.tools:
        if not isinstance(tool, FunctionTool):
            continue
        present = tool.tool_input_guardrails or []
        if not any(g.get_name() == guardrail.get_name() for g in present):
            tool.tool_input_guardrails = [*present, guardrail]
    return agent


__all__ = ["arm_guardrail", "guard_agent"]
