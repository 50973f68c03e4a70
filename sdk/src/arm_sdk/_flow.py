"""The guard's logic, written once for the sync and the async client: a generator that yields the
operations it needs (evaluate, wait for an approval, read it, sleep) and receives their results; each
client drives it with its own I/O (``Client._drive`` / ``AsyncClient._drive``).

evaluate → ALLOW: done · DENY: ``Denied`` · NEEDS_APPROVAL: wait for the approval (the long-poll
``GET /approvals/{id}/wait/``, or polling ``GET /approvals/{id}/`` with backoff where the server has no
wait endpoint) until it is decided or the deadline passes → APPROVED: evaluate again with the same
idempotency key (and the approval's id), which ARM answers with ALLOW through the approval · DENIED,
EXPIRED, WITHDRAWN: ``ApprovalDenied`` / ``ApprovalExpired`` / ``ApprovalWithdrawn`` · still pending at
the deadline: ``ApprovalTimeout`` (the request stays open; the same key finds it again).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from .errors import APPROVAL_DENY_CODES, APPROVAL_STATUS_ERRORS, ApprovalPending, ApprovalTimeout, ArmError, Denied
from .models import ALLOW, DENY, NEEDS_APPROVAL, Decision, Reason
from .normalize import Call

WAIT_MAX_SECONDS = 30.0  # one long-poll (the server allows up to 60)
POLL_FIRST, POLL_MAX = 0.5, 5.0
MAX_APPROVAL_ROUNDS = 5  # approvals one call may go through (a re-evaluation that opens another is a loop)


@dataclass(frozen=True)
class Evaluate:
    call: Call
    idempotency_key: str
    approval: str | None = None


@dataclass(frozen=True)
class Wait:
    """Answered with (the approval, whether the server held the request until a decision or the timeout);
    a server without the wait endpoint answers with the approval as it reads now, and False."""

    approval: str
    seconds: int


@dataclass(frozen=True)
class GetApproval:
    approval: str


@dataclass(frozen=True)
class Sleep:
    seconds: float


Op = Evaluate | Wait | GetApproval | Sleep
Flow = Generator[Op, Any, Any]


def denied(decision: Decision) -> Denied:
    """The error for a DENY: the approval-specific kind when the DENY is about the call's approval."""
    for reason in decision.reasons:
        if reason.code in APPROVAL_DENY_CODES:
            return APPROVAL_DENY_CODES[reason.code](decision, decision.reasons)
    return Denied(decision, decision.reasons)


def approval_refused(decision: Decision, approval: dict) -> Denied:
    status = approval.get("status")
    cls, code = APPROVAL_STATUS_ERRORS[status]
    who = approval.get("decided_by")
    note = approval.get("note")
    text = f"Approval {approval.get('id')} is {str(status).lower()}"
    text += f" by {who}" if who and status == "DENIED" else ""
    text += f": {note}" if note else "."
    return cls(decision, (Reason(code, text),))


def guard_flow(
    call: Call, *, idempotency_key: str, wait: bool, timeout: float | None, clock: Callable[[], float]
) -> Flow:
    """Evaluate ``call`` and see it through its approval (see the module docstring). Returns the ALLOW."""
    deadline = None if timeout is None else clock() + timeout
    decision = yield Evaluate(call, idempotency_key)
    for _round in range(MAX_APPROVAL_ROUNDS):
        if decision.decision == ALLOW:
            return decision
        if decision.decision == DENY:
            raise denied(decision)
        if decision.decision != NEEDS_APPROVAL or not decision.approval:
            raise ArmError(f"ARM answered an unknown decision {decision.decision!r}.", code="unknown_decision")
        if not wait:
            raise ApprovalPending(decision)
        approval = yield from wait_flow(decision.approval, deadline=deadline, clock=clock)
        status = approval.get("status")
        if status == "PENDING":
            raise ApprovalTimeout(decision, f"Approval {decision.approval} is still pending at the deadline.")
        if status != "APPROVED":
            if status in APPROVAL_STATUS_ERRORS:
                raise approval_refused(decision, approval)
            raise ArmError(f"Approval {decision.approval} has an unknown status {status!r}.", code="unknown_status")
        decision = yield Evaluate(call, idempotency_key, approval=decision.approval)
    raise ArmError(
        f"The call went through {MAX_APPROVAL_ROUNDS} approvals without an answer; stopped.", code="approval_loop"
    )


def wait_flow(approval_id: str, *, deadline: float | None, clock: Callable[[], float]) -> Flow:
    """The approval once it is no longer PENDING, or as it is at the deadline."""
    use_wait = True
    poll = POLL_FIRST
    while True:
        remaining = None if deadline is None else deadline - clock()
        if remaining is not None and remaining <= 0:
            return (yield GetApproval(approval_id))
        if use_wait:
            if remaining is not None and remaining < 1:  # the wait endpoint counts whole seconds
                yield Sleep(remaining)
                continue
            seconds = int(WAIT_MAX_SECONDS if remaining is None else min(WAIT_MAX_SECONDS, remaining))
            started = clock()
            approval, use_wait = yield Wait(approval_id, seconds)
            # A server that answers a wait well before its timeout is not holding it: pace the next one.
            held = clock() - started >= seconds / 2
        else:
            approval, held = (yield GetApproval(approval_id)), False
        if approval.get("status") != "PENDING":
            return approval
        if use_wait and held:
            continue
        yield Sleep(poll if remaining is None else min(poll, remaining))
        poll = min(poll * 2, POLL_MAX)
