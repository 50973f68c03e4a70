"""The policies and approvals part of the demo dataset, built through the real services so every
revision, decision, approval and change record is genuine. ``manage.py seed_demo`` calls
``seed_policy_demo`` once per demo tenant.

Idempotent: policies are found by name, a policy is attached only to an instance that has none, and
the decision history is written only while the tenant has no decisions yet.

The history happens in real time, in the order a live system would produce it: each approval is
requested by its evaluation, then decided, then used. Pending approvals come from the policies'
approval timeouts (hours, so they outlast a demo); the expired ones were opened under ``live-voice``,
whose approvals time out after two seconds: the seed waits out that deadline and lets the expiry
service expire them, so each keeps its ``APPROVAL_EXPIRED`` record and expires after it was requested.
"""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from approvals.services import approval_decide, approval_withdraw, approvals_expire_due
from arm.demo_ids import demo_id
from policies import services
from policies.models import ATTACHED_POLICY, PolicyAttachment, PolicyDecision, PolicyEnvelope
from registry.choices import InstanceState
from registry.models import AgentInstance
from tenancy.choices import Role
from tenancy.context import Actor

LIVE_TIMEOUT_SECONDS = 2
DEMO_POLICIES = [
    {
        "name": "observe-only",
        "description": "Tier 0: the agent may watch but never act. For new or suspicious agents.",
        "autonomy_tier": 0,
        "allowed_tools": ["*"],
        "data_scopes": ["*"],
    },
    {
        "name": "supervised",
        "description": "Tier 1: every tool call waits for a human approval.",
        "autonomy_tier": 1,
        "allowed_tools": ["*"],
        "denied_tools": ["*.delete", "shell.*"],
        "data_scopes": ["*:read"],
        "approval_timeout_seconds": 4 * 3600,
    },
    {
        "name": "support-standard",
        "description": "Tier 2: low-risk tools run alone; anything riskier needs approval. Daily and monthly budget.",
        "autonomy_tier": 2,
        "allowed_tools": ["*"],
        "denied_tools": ["*.delete", "shell.*", "deploy.*"],
        "data_scopes": ["crm:*", "tickets:*", "email:*", "wiki:read", "repo:read", "warehouse:read"],
        "cost_limit_daily_usd": Decimal("25.00"),
        "cost_limit_monthly_usd": Decimal("500.00"),
        "approval_timeout_seconds": 8 * 3600,
    },
    {
        "name": "live-voice",
        "description": (
            "Tier 2 for agents on a live phone call: a risky call gets two seconds for the supervisor's "
            "one-tap approval, then the agent carries on without it (the caller will not wait)."
        ),
        "autonomy_tier": 2,
        "allowed_tools": ["*"],
        "denied_tools": ["*.delete", "shell.*", "deploy.*"],
        "data_scopes": ["crm:*", "tickets:*", "email:*", "wiki:read"],
        "cost_limit_daily_usd": Decimal("25.00"),
        "approval_timeout_seconds": LIVE_TIMEOUT_SECONDS,
    },
    {
        "name": "trusted-automation",
        "description": "Tier 4: everything but critical-risk tools runs alone.",
        "autonomy_tier": 4,
        "allowed_tools": ["*"],
        "denied_tools": ["shell.*"],
        "data_scopes": ["*"],
        "cost_limit_daily_usd": Decimal("100.00"),
        "cost_limit_monthly_usd": Decimal("2000.00"),
        "tool_risk_overrides": {"email.send": "critical"},
        "approval_timeout_seconds": 8 * 3600,
    },
    {
        # Attached to nothing: the policy the API reference's delete example can remove.
        "name": "contractor-trial",
        "description": "Tier 1 for agents built by an outside contractor while on trial; not in use yet.",
        "autonomy_tier": 1,
        "allowed_tools": ["crm.lookup", "tickets.*"],
        "denied_tools": ["*.delete", "shell.*", "deploy.*", "email.*"],
        "data_scopes": ["crm:read", "tickets:read"],
        "cost_limit_daily_usd": Decimal("5.00"),
        "approval_timeout_seconds": 2 * 3600,
    },
]
# Which policy each ACTIVE instance gets, in turn (the others get support-standard).
ACTIVE_ROTATION = ["support-standard", "live-voice", "trusted-automation", "supervised"]
RISK_ORDER = ("low", "medium", "high", "critical")


def _actor(actors: dict, role: str, fallback: str) -> Actor:
    return actors.get(role) or Actor(ref=f"system:demo-{fallback}", roles=frozenset({role}))


def _ensure_policies(tenant, compliance: Actor) -> dict[str, PolicyEnvelope]:
    policies = {}
    for spec in DEMO_POLICIES:
        policy = PolicyEnvelope.objects.filter(tenant=tenant, name=spec["name"]).first()
        if policy is None:
            policy = services.policy_create(
                tenant=tenant, actor=compliance, pk=demo_id("policy", spec["name"], tenant.slug), **spec
            )
        policies[spec["name"]] = policy
    # One genuine revision history: tighten the standard policy once after creation.
    standard = policies["support-standard"]
    if standard.revision == 1:
        policies["support-standard"] = services.policy_update(
            policy=standard, actor=compliance, denied_tools=["*.delete", "shell.*", "deploy.*", "email.bulk*"]
        )
    return policies


def _attach(instances, policies, compliance: Actor) -> None:
    live = [i for i in instances if i.state != InstanceState.RETIRED]
    active = [i for i in live if i.state == InstanceState.ACTIVE]
    turn = 0
    attached = set(PolicyAttachment.objects.filter(instance__in=live).values_list("instance_id", flat=True))
    for instance in sorted(live, key=lambda i: (i.name, str(i.pk))):
        if instance.pk in attached:
            continue
        if instance.state == InstanceState.ACTIVE:
            name = ACTIVE_ROTATION[turn % len(ACTIVE_ROTATION)] if len(active) > 1 else "support-standard"
            turn += 1
        elif instance.state == InstanceState.PROVISIONING:
            name = "observe-only"
        else:
            name = "support-standard"
        services.policy_attach(instance=instance, policy=policies[name], actor=compliance)


def _manifest(instance) -> list[dict]:
    return [t for t in (instance.version.genome or {}).get("tool_manifest", []) if isinstance(t, dict)]


def _tool(instance, lowest: bool) -> dict | None:
    tools = sorted(_manifest(instance), key=lambda t: RISK_ORDER.index(t.get("risk", "medium")))
    if not tools:
        return None
    return tools[0] if lowest else tools[-1]


def _history(tenant, instances, operator: Actor, approver: Actor) -> dict:
    counts = {"decisions": 0, "approvals": {}}

    def evaluate(instance, tool: dict | str, **kwargs):
        name = tool if isinstance(tool, str) else tool["name"]
        scopes = [] if isinstance(tool, str) else tool.get("data_scopes", [])
        result = services.policy_evaluate(
            tenant=tenant,
            instance_id=instance.pk,
            tool=name,
            actor=operator,
            data_scopes=kwargs.pop("scopes", scopes),
            **kwargs,
        )
        counts["decisions"] += 1
        return result

    live = sorted((i for i in instances if i.state != InstanceState.RETIRED), key=lambda i: (i.name, str(i.pk)))
    approvals: list = []
    for instance in live:
        low, high = _tool(instance, lowest=True), _tool(instance, lowest=False)
        if low is None:
            continue
        if instance.state != InstanceState.ACTIVE:
            evaluate(instance, low, params={"probe": True})  # instance_state (or a low-risk READONLY ALLOW)
            if high is not low:
                evaluate(instance, high, params={"probe": True})
            continue
        for n, cost in enumerate(("0.05", "0.12", "0.40")):
            evaluate(instance, low, params={"customer_id": 1000 + n}, estimated_cost_usd=Decimal(cost))
        evaluate(instance, "shell.exec", params={"cmd": "rm -rf /tmp/cache"})  # undeclared_tool
        evaluate(instance, low, params={"customer_id": 7}, scopes=["billing:write"])  # data_scope
        evaluate(instance, low, params={"export": "all"}, estimated_cost_usd=Decimal("999.00"))  # cost_limit
        if high is not low:
            for n in range(4):
                result = evaluate(
                    instance,
                    high,
                    params={"ticket": 4200 + n, "to": f"customer{n}@example.com"},
                    estimated_cost_usd=Decimal("0.30"),
                    idempotency_key=f"demo-{instance.pk}-{n}",
                )
                if result.approval_id and result.decision.decision == "NEEDS_APPROVAL":
                    approvals.append((instance, high, n, result.approval_id))

    _settle(tenant, approvals, evaluate, approver, operator)
    for status in ApprovalStatus.values:
        counts["approvals"][status] = ApprovalRequest.objects.filter(tenant=tenant, status=status).count()
    return counts


def _settle(tenant, approvals: list, evaluate, approver: Actor, requester: Actor) -> None:
    """Decide the history's approvals the way people would, after they were requested: of those that
    last (hours), approve one (and use it: the agent's call goes through), deny the next, leave the
    third pending, and the fourth the agent that asked withdraws, in turn. Those opened under a
    seconds-long timeout (``live-voice``) nobody answered in time: wait out their deadline, then the
    expiry service expires them with their records."""
    fleeting = []
    lasting = 0
    for instance, tool, n, approval_id in approvals:
        approval = ApprovalRequest.objects.select_related("tenant").get(pk=approval_id)
        if approval.status != ApprovalStatus.PENDING:
            continue
        if approval.expires_at - approval.requested_at <= timedelta(minutes=1):
            fleeting.append(approval)
            continue
        step = lasting % 4
        lasting += 1
        if step == 0:
            approval_decide(approval=approval, approve=True, note="Checked the ticket, fine to send.", actor=approver)
            evaluate(
                instance,
                tool,
                params={"ticket": 4200 + n, "to": f"customer{n}@example.com"},
                estimated_cost_usd=Decimal("0.30"),
                approval_id=approval.pk,
            )
        elif step == 1:
            approval_decide(approval=approval, approve=False, note="Not to this customer.", actor=approver)
        elif step == 3:
            approval_withdraw(approval=approval, note="The customer answered the ticket meanwhile.", actor=requester)
    if fleeting:
        wait = (max(a.expires_at for a in fleeting) - timezone.now()).total_seconds()
        if wait > 0:
            time.sleep(wait)
        approvals_expire_due(tenant=tenant)


def seed_policy_demo(tenant, instances: list, actors: dict) -> dict:
    """Policies at tiers 0, 1, 2 and 4 attached to ``instances``, a history of ALLOW / DENY /
    NEEDS_APPROVAL decisions from the real evaluation service, and approvals that are pending, approved
    (and used), denied and expired. ``actors`` maps roles to Actors: ``compliance`` writes policies,
    ``operator`` evaluates, ``approver`` decides (named stand-ins are used for missing roles).
    Returns a summary. Safe to run again: nothing is duplicated."""
    compliance = _actor(actors, Role.COMPLIANCE, "compliance")
    operator = _actor(actors, Role.OPERATOR, "operator")
    approver = _actor(actors, Role.APPROVER, "approver")
    instances = [i for i in instances if i.tenant_id == tenant.pk]
    policies = _ensure_policies(tenant, compliance)
    _attach(instances, policies, compliance)
    summary = {"policies": len(policies), "decisions": 0, "approvals": {}}
    if not PolicyDecision.objects.filter(tenant=tenant).exists():
        fresh = list(
            AgentInstance.objects.filter(pk__in=[i.pk for i in instances]).select_related("version", ATTACHED_POLICY)
        )
        summary.update(_history(tenant, fresh, operator, approver))
    return summary
