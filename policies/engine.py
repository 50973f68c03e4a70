"""The policy decision procedure (SPEC §4) as one pure function.

``decide`` takes plain, already-loaded data and returns a plain outcome: no ORM, no clock, no I/O. The
evaluation service loads the inputs in a fixed number of queries and applies the side effects the
outcome asks for (open or reuse an approval, consume an approval, add spend); the simulation runs the
same function over reconstructed inputs. Keeping it pure makes it cheap and lets the
tests walk every branch exhaustively.

Order (the first hard check that fails decides, with its reason code):
 1 instance_state  2 integrity  3 no_policy  4 undeclared_tool  5 tool_not_allowed  6 data_scope
 7 cost_limit  8 risk  9 autonomy tier (observe_only / tier_allows / needs_approval)
 10 NEEDS_APPROVAL opens an approval (done by the caller)  11 a valid approval turns it into ALLOW.
An approval never overrides checks 1-7, nor tier 0 (observe only): it only lifts the human gate of 9.

An approval grants the whole call it was opened for (``approval_problem``): the same instance, tool and
canonical params, an estimate at most the approved one (none approved: none or 0) and data scopes within the
approved ones; opened under an idempotency key, only that key's call (or a call without a key) uses it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from approvals.choices import ApprovalStatus
from policies.choices import Decision, ReasonCode
from registry.choices import DEFAULT_RISK, RISK_ORDER, InstanceState, IntegrityStatus, Risk

# The highest risk each autonomy tier lets through without a human (None: nothing).
TIER_MAX_RISK: dict[int, str | None] = {
    0: None,
    1: None,
    2: Risk.LOW,
    3: Risk.MEDIUM,
    4: Risk.HIGH,
    5: Risk.CRITICAL,
}
TIER_DESCRIPTIONS: dict[int, str] = {
    0: "Observe only: every tool call is denied.",
    1: "Every tool call needs a human approval.",
    2: "Low-risk tools run alone; medium, high and critical need approval.",
    3: "Low and medium-risk tools run alone; high and critical need approval.",
    4: "Everything but critical-risk tools runs alone; critical needs approval.",
    5: "Full autonomy: every declared, allowed tool runs without approval.",
}
ZERO = Decimal("0")


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """The envelope fields the decision reads."""

    id: object
    revision: int
    autonomy_tier: int
    allowed_tools: Sequence[str] = ()
    denied_tools: Sequence[str] = ()
    data_scopes: Sequence[str] = ()
    cost_limit_daily_usd: Decimal | None = None
    cost_limit_monthly_usd: Decimal | None = None
    tool_risk_overrides: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ApprovalInput:
    """The approval named in the request, as loaded (``None`` fields when it was not found)."""

    id: object
    found: bool = True
    status: str = ""
    instance_id: object = None
    tool: str = ""
    params_hash: str = ""
    expires_at: datetime | None = None
    used_at: datetime | None = None
    # Who decided it, as a person (``ApprovalRequest.decided_by_display``).
    decided_by: str = ""
    # What it grants beside the call's identity: the estimate at most (None: no estimate, or 0) and the
    # data scopes at most; and the idempotency key it was opened under ("" for none).
    estimated_cost_usd: Decimal | None = None
    data_scopes: Sequence[str] = ()
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class EvaluationInput:
    instance_id: object
    instance_state: str
    integrity_status: str
    tool: str
    # The version's own manifest risk for ``tool``; None when the manifest does not declare it.
    manifest_risk: str | None
    policy: PolicyInput | None
    params_hash: str
    now: datetime
    data_scopes: Sequence[str] = ()
    estimated_cost_usd: Decimal | None = None
    # Estimates of ALLOWed calls so far (the counters' amount_usd) ...
    spend_today_usd: Decimal = ZERO
    spend_month_usd: Decimal = ZERO
    # ... and the actual cost the runtime reported to the ledger for the same periods (actual_usd).
    actual_today_usd: Decimal = ZERO
    actual_month_usd: Decimal = ZERO
    approval: ApprovalInput | None = None
    version_label: str = ""
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    decision: str
    risk: str
    reasons: tuple[Reason, ...]
    # What the caller must do: open (or reuse) an approval request, or consume the given one.
    open_approval: bool = False
    consume_approval: bool = False

    def reasons_as_dicts(self) -> list[dict]:
        return [r.as_dict() for r in self.reasons]


def matches_any(value: str, patterns: Sequence[str]) -> bool:
    """Case-sensitive glob match (``fnmatchcase`` caches compiled patterns)."""
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def effective_risk(tool: str, manifest_risk: str | None, policy: PolicyInput | None) -> str:
    """Step 8: the policy's override, else the manifest's risk, else medium."""
    if policy is not None:
        override = policy.tool_risk_overrides.get(tool)
        if override in RISK_ORDER:
            return str(override)
    if manifest_risk in RISK_ORDER:
        return str(manifest_risk)
    return str(DEFAULT_RISK)


def tier_allows(tier: int, risk: str) -> bool:
    ceiling = TIER_MAX_RISK.get(tier)
    return ceiling is not None and RISK_ORDER[risk] <= RISK_ORDER[ceiling]


def counted_spend(estimated: Decimal, actual: Decimal) -> tuple[Decimal, str]:
    """The spend a cost limit counts for one period: the larger of the estimates of ALLOWed calls and
    the actual cost reported to the ledger, and which one it was.

    Not their sum: a call is usually both estimated (at evaluation) and reported (after it ran), so
    adding them would count it twice. Taking the larger still denies an instance whose real spend is past
    its limit (``cost_limit``) even when its estimates were low or absent, and keeps the estimate as a
    floor while the usage reports of recent calls are still on their way."""
    if actual > estimated:
        return actual, "reported usage"
    return estimated, "estimates"


def _usd(value: Decimal) -> str:
    cents = value.quantize(Decimal("0.01"))
    return f"${cents}" if cents == value else f"${value.normalize()}"


def _hard_check(inp: EvaluationInput, risk: str) -> Reason | None:
    """Checks 1-7 in order; the first failure, or None."""
    state = inp.instance_state
    if state != InstanceState.ACTIVE and not (state == InstanceState.READONLY and risk == Risk.LOW):
        if state == InstanceState.READONLY:
            msg = f"The instance is READONLY: only low-risk tools may run, and {inp.tool} is {risk} risk."
        else:
            msg = f"The instance is {state}; tools run only on ACTIVE instances (READONLY: low risk only)."
        return Reason(ReasonCode.INSTANCE_STATE, msg)
    if inp.integrity_status == IntegrityStatus.TAMPERED:
        return Reason(
            ReasonCode.INTEGRITY,
            "The instance's version failed its integrity check (genome hash mismatch): it may not act.",
        )
    policy = inp.policy
    if policy is None:
        return Reason(ReasonCode.NO_POLICY, "The instance has no policy envelope attached; ARM fails closed.")
    if inp.manifest_risk is None:
        label = f" {inp.version_label}" if inp.version_label else ""
        return Reason(
            ReasonCode.UNDECLARED_TOOL,
            f"Tool {inp.tool} is not declared in the tool manifest of version{label}.",
        )
    if matches_any(inp.tool, policy.denied_tools):
        return Reason(ReasonCode.TOOL_NOT_ALLOWED, f"Tool {inp.tool} matches the policy's denied_tools.")
    if not matches_any(inp.tool, policy.allowed_tools):
        return Reason(ReasonCode.TOOL_NOT_ALLOWED, f"Tool {inp.tool} matches none of the policy's allowed_tools.")
    outside = [s for s in inp.data_scopes if not matches_any(s, policy.data_scopes)]
    if outside:
        return Reason(
            ReasonCode.DATA_SCOPE,
            f"Data scope(s) outside the policy: {', '.join(outside)}.",
        )
    estimate = inp.estimated_cost_usd or ZERO
    daily, monthly = policy.cost_limit_daily_usd, policy.cost_limit_monthly_usd
    if daily is not None:
        spent, basis = counted_spend(inp.spend_today_usd, inp.actual_today_usd)
        if spent + estimate > daily:
            return Reason(
                ReasonCode.COST_LIMIT,
                f"Daily limit {_usd(daily)} would be exceeded: spent {_usd(spent)} today (UTC{_basis(basis)}) "
                f"+ estimate {_usd(estimate)}.",
            )
    if monthly is not None:
        spent, basis = counted_spend(inp.spend_month_usd, inp.actual_month_usd)
        if spent + estimate > monthly:
            return Reason(
                ReasonCode.COST_LIMIT,
                f"Monthly limit {_usd(monthly)} would be exceeded: spent {_usd(spent)} this month "
                f"(UTC{_basis(basis)}) + estimate {_usd(estimate)}.",
            )
    return None


def _basis(basis: str) -> str:
    # Messages stay as they were when the estimates decide; they say so when reported usage does.
    return ", reported usage" if basis == "reported usage" else ""


def approval_problem(inp: EvaluationInput) -> str | None:
    """Why the given approval cannot grant this call (None: it can)."""
    a = inp.approval
    if a is None:
        return None
    if not a.found:
        return f"Approval {a.id} was not found."
    if str(a.instance_id) != str(inp.instance_id):
        return f"Approval {a.id} was opened for another instance."
    if a.tool != inp.tool:
        return f"Approval {a.id} was opened for tool {a.tool}, not {inp.tool}."
    if a.params_hash != inp.params_hash:
        return f"Approval {a.id} was opened for different params (the canonical params hash differs)."
    estimate = inp.estimated_cost_usd or ZERO
    if estimate > (a.estimated_cost_usd or ZERO):
        granted = "no estimate" if a.estimated_cost_usd is None else f"an estimate of {_usd(a.estimated_cost_usd)}"
        return f"Approval {a.id} was granted for {granted}, not {_usd(estimate)}."
    outside = sorted(set(inp.data_scopes) - set(a.data_scopes))
    if outside:
        return f"Approval {a.id} does not grant the data scope(s) {', '.join(outside)}."
    if a.idempotency_key and inp.idempotency_key and a.idempotency_key != inp.idempotency_key:
        return f"Approval {a.id} was opened for another idempotency_key."
    if a.status == ApprovalStatus.PENDING and (a.expires_at is None or a.expires_at > inp.now):
        return f"Approval {a.id} is still PENDING: wait for a decision."
    if a.status in (ApprovalStatus.DENIED, ApprovalStatus.EXPIRED, ApprovalStatus.WITHDRAWN):
        return f"Approval {a.id} is {a.status}."
    if a.status != ApprovalStatus.APPROVED:
        return f"Approval {a.id} expired before anyone decided it."
    if a.used_at is not None:
        return f"Approval {a.id} was already used; approvals are single use."
    if a.expires_at is not None and a.expires_at <= inp.now:
        return f"Approval {a.id} expired at {a.expires_at.isoformat()}."
    return None


def decide(inp: EvaluationInput) -> Outcome:
    """The decision for one tool call (pure; see the module docstring for the order)."""
    risk = effective_risk(inp.tool, inp.manifest_risk, inp.policy)
    failed = _hard_check(inp, risk)
    given = inp.approval is not None
    if failed is not None:
        reasons = (failed,)
        if given:
            reasons += (
                Reason(ReasonCode.APPROVAL_INVALID, "An approval never overrides this check; it was not used."),
            )
        return Outcome(Decision.DENY, risk, reasons)

    tier = inp.policy.autonomy_tier
    if tier == 0:
        reasons = (Reason(ReasonCode.OBSERVE_ONLY, "Tier 0 policy: observe only, every tool call is denied."),)
        if given:
            reasons += (
                Reason(ReasonCode.APPROVAL_INVALID, "An observe-only policy cannot be overridden by an approval."),
            )
        return Outcome(Decision.DENY, risk, reasons)

    if tier_allows(tier, risk):
        base = Reason(ReasonCode.TIER_ALLOWS, f"Tier {tier} lets {risk}-risk tools run without approval.")
        allowed = True
    else:
        if tier == 1:
            text = "Tier 1 policy: every tool call needs a human approval."
        else:
            text = f"Tier {tier} lets up to {TIER_MAX_RISK[tier]}-risk tools run alone; {inp.tool} is {risk} risk."
        base = Reason(ReasonCode.NEEDS_APPROVAL, text)
        allowed = False

    if given:
        problem = approval_problem(inp)
        if problem is None:
            granted = Reason(
                ReasonCode.APPROVAL_GRANTED,
                f"Approved by {inp.approval.decided_by or 'an approver'}: approval {inp.approval.id} is used by "
                "this call and cannot be used again.",
            )
            return Outcome(Decision.ALLOW, risk, (granted,), consume_approval=True)
        invalid = Reason(ReasonCode.APPROVAL_INVALID, problem)
        if allowed:
            return Outcome(Decision.ALLOW, risk, (base, invalid))
        return Outcome(Decision.NEEDS_APPROVAL, risk, (base, invalid), open_approval=True)

    if allowed:
        return Outcome(Decision.ALLOW, risk, (base,))
    return Outcome(Decision.NEEDS_APPROVAL, risk, (base,), open_approval=True)
