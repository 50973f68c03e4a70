"""pydantic-ai: a capability that asks ARM before each tool call, with ARM's approvals as pydantic-ai's
deferred, approval-required tool calls (``pip install "arm-sdk[pydantic-ai]"``).

    from arm_sdk.pydantic_ai import ArmGuard, wait_for_approvals
    agent = Agent(model, tools=[crm_lookup, send_email],
                  capabilities=[ArmGuard(), HandleDeferredToolCalls(handler=wait_for_approvals())])

For each call (``ArmGuard.wrap_tool_execute``, before the tool runs):

- ALLOW: the tool runs. DENY: the model gets ARM's reasons as the tool's result (``on_deny="raise"``
  raises ``Denied`` instead).
- NEEDS_APPROVAL: the call is deferred with ``ApprovalRequired(metadata={"arm_approval": id, …})``.
  With ``HandleDeferredToolCalls(handler=wait_for_approvals())`` the run waits in place until people decide
  in ARM; without it the run ends with ``DeferredToolRequests`` output (give the agent
  ``output_type=[..., DeferredToolRequests]``), and ``await approval_results(result.output)`` later waits
  for ARM's decisions and builds the ``DeferredToolResults`` to resume with
  (``agent.run(message_history=result.all_messages(), deferred_tool_results=...)``).
- The resumed call carries the approval's id in its metadata and is evaluated again with the same
  idempotency key (derived from the model's tool call id): ARM answers ALLOW through that approval, once;
  no second request is opened. A call ARM denied, or that expired or was withdrawn, is answered to the model
  with ``ToolDenied`` and ARM's reason.

The framework's tool name is the call name ARM's evaluate takes; ``tools=`` maps names that differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.exceptions import ApprovalRequired
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults, ToolDenied

from ._flow import approval_refused, denied
from .client import AsyncClient
from .errors import APPROVAL_STATUS_ERRORS, ArmError
from .guard import default_async_client
from .models import ALLOW, DENY, NEEDS_APPROVAL, Decision

METADATA_KEY = "arm_approval"


@dataclass
class ArmGuard(AbstractCapability[Any]):
    """Asks ARM before every tool call of the agent (see the module docstring)."""

    client: AsyncClient | None = None
    instance: str | None = None
    tools: Mapping[str, str] = field(default_factory=dict)
    data_scopes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    estimate: Mapping[str, Any] = field(default_factory=dict)
    on_deny: Literal["message", "raise"] = "message"

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # holds a client: not spec-serializable

    async def wrap_tool_execute(self, ctx, *, call, tool_def, args, handler) -> Any:
        client = self.client or default_async_client()
        name = call.tool_name
        cost = self.estimate.get(name)
        metadata = ctx.tool_call_metadata if isinstance(ctx.tool_call_metadata, dict) else {}
        decision = await client.evaluate(
            self.tools.get(name, name),
            args,
            instance=self.instance,
            data_scopes=self.data_scopes.get(name),
            estimated_cost_usd=cost(args) if callable(cost) else cost,
            run_id=call.tool_call_id,
            approval=metadata.get(METADATA_KEY),
        )
        if decision.decision == ALLOW:
            return await handler(args)
        if decision.decision == NEEDS_APPROVAL:
            raise ApprovalRequired(metadata=_pending(name, decision))
        if decision.decision == DENY:
            error = denied(decision)
            if self.on_deny == "raise":
                raise error
            return f"ARM refused this call of {name}: {decision.explain()}"
        raise ArmError(f"ARM answered an unknown decision {decision.decision!r}.", code="unknown_decision")


def _pending(tool: str, decision: Decision) -> dict:
    return {
        METADATA_KEY: decision.approval,
        "tool": tool,
        "risk": decision.risk,
        "reasons": [{"code": r.code, "message": r.message} for r in decision.reasons],
    }


async def approval_results(
    requests: DeferredToolRequests, *, client: AsyncClient | None = None, timeout: float | None = None
) -> DeferredToolResults:
    """Waits in ARM for the approvals ``requests`` stopped on (``timeout`` seconds at most; None: until each
    is decided or expires) and answers them: approved → run (with the approval's id for the re-evaluation),
    denied, expired or withdrawn → ``ToolDenied`` with ARM's reason. Calls that are not ARM's, and ARM's
    still pending at the timeout, are left out (``requests.remaining(results)`` lists them)."""
    client = client or default_async_client()
    results = DeferredToolResults()
    for call in requests.approvals:
        approval_id = (requests.metadata.get(call.tool_call_id) or {}).get(METADATA_KEY)
        if not approval_id:
            continue
        approval = await client.wait_for_approval(approval_id, timeout=timeout)
        status = approval.get("status")
        if status == "APPROVED":
            results.approvals[call.tool_call_id] = True
            results.metadata[call.tool_call_id] = {METADATA_KEY: approval_id}
        elif status in APPROVAL_STATUS_ERRORS:
            pending = Decision(NEEDS_APPROVAL, None, (), approval_id, None)
            results.approvals[call.tool_call_id] = ToolDenied(f"ARM: {approval_refused(pending, approval).message}")
    return results


def wait_for_approvals(*, client: AsyncClient | None = None, timeout: float | None = None):
    """A ``HandleDeferredToolCalls`` handler: the run waits in place for ARM's decisions
    (``approval_results``); it declines (None) when none of the calls is ARM's."""

    async def handler(ctx, requests: DeferredToolRequests) -> DeferredToolResults | None:
        results = await approval_results(requests, client=client, timeout=timeout)
        return results if results.approvals else None

    return handler


__all__ = ["ArmGuard", "approval_results", "wait_for_approvals"]
