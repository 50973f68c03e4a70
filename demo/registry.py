"""The registry part of the demo dataset, built through the real services (so every change record,
hash and guard is genuine). Used by ``manage.py seed_demo``; idempotent: a tenant that already exists
keeps its data."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model

from arm.demo_ids import demo_id
from registry import services
from registry.choices import InstanceState
from registry.models import AgentInstance, AgentVersion
from tenancy.choices import MEMBER_ROLES, Role
from tenancy.context import Actor, actor_context
from tenancy.models import Membership, Tenant
from tenancy.services import membership_set, tenant_create

DEMO_PASSWORD_SUFFIX = "-demo-pass"


def demo_password(username: str) -> str:
    return f"{username.split('-')[-1]}{DEMO_PASSWORD_SUFFIX}"


@dataclass
class DemoTenant:
    tenant: Tenant
    actors: dict[str, Actor]
    instances: list[AgentInstance] = field(default_factory=list)
    created: bool = False


def _prompt_hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _genome(model: str, prompt: str, tools: list[dict], temperature: float = 0.2, provider: str = "openai") -> dict:
    return {
        "model_config": {"provider": provider, "name": model, "parameters": {"temperature": temperature}},
        "prompt_bundle_hash": _prompt_hash(prompt),
        "tool_manifest": tools,
        "provenance": {
            "source": "git+https://git.example.com/agents.git",
            "commit": _prompt_hash(prompt)[7:47],
            "built_by": "ci",
        },
    }


SUPPORT_TOOLS = [
    {"name": "crm.lookup", "version": "1.2.0", "risk": "low", "data_scopes": ["crm:read"]},
    {"name": "tickets.update", "version": "2.0.1", "risk": "medium", "data_scopes": ["tickets:write"]},
    {"name": "email.send", "risk": "high", "data_scopes": ["email:send"]},
]


def ensure_users(tenant: Tenant, system: Actor) -> dict[str, Actor]:
    """One user per member role (``<slug>-<role>``), tenant admins are staff (Django admin)."""
    User = get_user_model()
    actors = {}
    for role in MEMBER_ROLES:
        username = f"{tenant.slug}-{role}"
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, email=f"{username}@example.com", is_staff=(role == Role.ADMIN))
            user.set_password(demo_password(username))
            user.save()
        if not Membership.objects.filter(tenant=tenant, user=user).exists():
            membership_set(tenant=tenant, user=user, roles=[role], actor=system)
        actors[role] = Actor.for_user(user, [role])
    return actors


def _ensure_multi_tenant_user(tenants: list[Tenant], system: Actor) -> None:
    """``ops`` is an operator in every demo tenant: sign in as ops to try the tenant switcher."""
    User = get_user_model()
    user = User.objects.filter(username="ops").first()
    if user is None:
        user = User(username="ops", email="ops@example.com")
        user.set_password("ops" + DEMO_PASSWORD_SUFFIX)
        user.save()
    for tenant in tenants:
        if not Membership.objects.filter(tenant=tenant, user=user).exists():
            membership_set(tenant=tenant, user=user, roles=[Role.OPERATOR, Role.VIEWER], actor=system)


def _walk(version: AgentVersion, path: list[str], actors: dict[str, Actor]) -> AgentVersion:
    for target in path:
        if target == "PASS" or target == "FAIL":
            services.evaluation_record(
                version=version,
                suite="regression-suite",
                status=target,
                score=0.97 if target == "PASS" else 0.61,
                details={"cases": 240, "failed": 0 if target == "PASS" else 37},
                actor=actors[Role.OPERATOR],
            )
            continue
        actor = actors[Role.APPROVER] if target == "APPROVED" else actors[Role.OPERATOR]
        version = services.version_transition(version=version, to=target, actor=actor, reason="demo lifecycle")
    return version


# The states in which an agent process runs and beats (the demo runtime keeps beating for these).
BEATING_STATES = (InstanceState.ACTIVE, InstanceState.READONLY, InstanceState.PAUSED, InstanceState.DRAINING)


def _first_beats(tenant: Tenant, instances: list[AgentInstance], actor: Actor) -> None:
    """The running instances' first heartbeat, through the heartbeat service as a runtime would send it;
    ``manage.py demo_runtime`` (started by ``make run``) keeps them beating."""
    beating = [i.pk for i in instances if i.state in BEATING_STATES]
    if beating:
        services.instance_heartbeats(tenant=tenant, instance_ids=beating, status={"source": "seed_demo"}, actor=actor)


def seed_acme(system: Actor) -> DemoTenant:
    tenant = Tenant.objects.filter(slug="acme").first()
    if tenant is not None:
        return DemoTenant(tenant, ensure_users(tenant, system), list(AgentInstance.objects.filter(tenant=tenant)))
    tenant = tenant_create(slug="acme", name="Acme Corp", actor=system)
    actors = ensure_users(tenant, system)

    def known(kind: str, name: str):
        return demo_id(kind, name, tenant.slug)

    op = actors[Role.OPERATOR]
    with actor_context(op, tenant):
        dev = services.environment_create(
            tenant=tenant, pk=known("environment", "dev"), name="dev", tier="dev", description="Sandbox", actor=op
        )
        staging = services.environment_create(
            tenant=tenant, pk=known("environment", "staging"), name="staging", tier="staging", actor=op
        )
        prod = services.environment_create(
            tenant=tenant,
            pk=known("environment", "prod-eu"),
            name="prod-eu",
            tier="prod",
            description="Production (EU)",
            config={"region": "eu-west-1"},
        )
        local = services.provider_create(
            tenant=tenant,
            pk=known("provider", "local-k8s"),
            name="local-k8s",
            type="local",
            health_endpoint="https://k8s.acme.example/healthz",
        )
        partner = services.provider_create(
            tenant=tenant,
            pk=known("provider", "partner-cloud"),
            name="partner-cloud",
            type="federated",
            health_endpoint="https://partner.example.net/arm/health",
            federation_config={"endpoint": "https://partner.example.net/arm", "trust": "mtls"},
        )
        support = services.template_create(
            tenant=tenant,
            pk=known("template", "support-bot"),
            name="support-bot",
            description="Answers customer tickets and escalates to humans.",
            owners=["support-team@acme.example", "acme-operator"],
            tags=["support", "customer-facing"],
        )
        sales = services.template_create(
            tenant=tenant,
            pk=known("template", "sales-assistant"),
            name="sales-assistant",
            description="Qualifies leads and drafts follow-up emails.",
            owners=["sales-ops@acme.example"],
            tags=["sales", "customer-facing"],
        )
        reviewer = services.template_create(
            tenant=tenant,
            pk=known("template", "code-reviewer"),
            name="code-reviewer",
            description="Reviews pull requests for security issues.",
            owners=["platform@acme.example"],
            tags=["engineering"],
        )
        analyst = services.template_create(
            tenant=tenant,
            pk=known("template", "data-analyst"),
            name="data-analyst",
            description="Answers questions over the warehouse.",
            owners=["data@acme.example"],
            tags=["analytics"],
        )
        # A family registered ahead of its first build: the one template that can still be deleted.
        services.template_create(
            tenant=tenant,
            pk=known("template", "invoice-triage"),
            name="invoice-triage",
            description="Will sort supplier invoices and flag duplicates; no build yet.",
            owners=["finance-ops@acme.example"],
            tags=["finance"],
        )

        def version(template, label, genome, parent=None):
            return services.version_create(
                tenant=tenant,
                template=template,
                version_label=label,
                genome=genome,
                parent=parent,
                actor=op,
                pk=known("version", f"{template.name}@{label}"),
            )

        to_approved = ["TESTING", "PASS", "CANDIDATE", "APPROVED"]
        s100 = _walk(version(support, "1.0.0", _genome("gpt-4o", "support v1", SUPPORT_TOOLS[:2])), to_approved, actors)
        s110 = _walk(
            version(support, "1.1.0", _genome("gpt-4.1", "support v1.1", SUPPORT_TOOLS), s100), to_approved, actors
        )
        s120 = _walk(
            version(support, "1.2.0", _genome("gpt-4.1", "support v1.2", SUPPORT_TOOLS, 0.1), s110),
            ["TESTING", "PASS", "CANDIDATE"],
            actors,
        )
        s130 = _walk(
            version(support, "1.3.0", _genome("gpt-4.1-mini", "support v1.3", SUPPORT_TOOLS, 0.1), s120),
            ["TESTING"],
            actors,
        )
        version(
            support,
            "1.4.0",
            _genome("gpt-4.1-mini", "support v1.4", [*SUPPORT_TOOLS, {"name": "refund.issue", "risk": "critical"}]),
            s130,
        )
        sales_tools = [
            {"name": "crm.lookup", "risk": "low", "data_scopes": ["crm:read"]},
            {"name": "email.draft", "risk": "low"},
            {"name": "email.send", "risk": "high"},
        ]
        sa090 = version(sales, "0.9.0", _genome("claude-sonnet-4", "sales v0.9", sales_tools[:2], provider="anthropic"))
        sa100 = _walk(
            version(sales, "1.0.0", _genome("claude-sonnet-4", "sales v1", sales_tools, provider="anthropic"), sa090),
            to_approved,
            actors,
        )
        _walk(
            version(
                sales, "1.1.0", _genome("claude-sonnet-4.5", "sales v1.1", sales_tools, provider="anthropic"), sa100
            ),
            ["TESTING", "FAIL"],
            actors,
        )
        review_tools = [
            {"name": "git.read", "risk": "low", "data_scopes": ["repo:read"]},
            {"name": "github.comment", "risk": "medium", "data_scopes": ["repo:comment"]},
            {"name": "deploy.trigger", "risk": "critical"},
        ]
        r200 = _walk(version(reviewer, "2.0.0", _genome("o3", "review v2", review_tools)), to_approved, actors)
        version(reviewer, "2.1.0", _genome("o4-mini", "review v2.1", review_tools), r200)
        analyst_tools = [
            {"name": "sql.query", "risk": "medium", "data_scopes": ["warehouse:read"]},
            {"name": "chart.render", "risk": "low"},
        ]
        a010 = version(analyst, "0.1.0", _genome("gpt-4.1", "analyst v0.1", analyst_tools))
        a020 = _walk(
            version(analyst, "0.2.0", _genome("gpt-4.1", "analyst v0.2", analyst_tools, 0.0), a010),
            ["TESTING", "PASS", "CANDIDATE"],
            actors,
        )

        def instance(ver, env, name, path=(), provider=local):
            inst = services.instance_create(
                tenant=tenant,
                version=ver,
                environment=env,
                provider=provider,
                name=name,
                actor=op,
                pk=known("instance", name),
            )
            for target in path:
                inst = services.instance_transition(instance=inst, to=target, actor=op, reason="demo")
            return inst

        old = instance(s100, prod, "support-eu-legacy", ["ACTIVE"])
        created = [
            instance(s110, prod, "support-eu-1", ["ACTIVE"]),
            instance(s110, prod, "support-eu-2", ["ACTIVE", "READONLY"], partner),
            instance(s110, prod, "support-chat", ["ACTIVE"]),
            instance(s120, staging, "support-staging", ["ACTIVE", "PAUSED"]),
            instance(s130, dev, "support-dev", ["ACTIVE"]),
            instance(sa100, prod, "sales-us-1", ["ACTIVE"], partner),
            instance(r200, dev, "reviewer-dev", ["ACTIVE", "QUARANTINED"]),
            instance(a020, staging, "analyst-staging"),
        ]
        # Retire the oldest build properly: drain its instance, deprecate, then retire the rest.
        old = services.instance_transition(instance=old, to="DRAINING", actor=op, reason="replaced by 1.1.0")
        services.instance_transition(instance=old, to="RETIRED", actor=op, reason="replaced by 1.1.0")
        services.version_transition(version=s100, to="DEPRECATED", actor=op, reason="superseded by 1.1.0")
        services.version_transition(version=sa090, to="RETIRED", actor=op, reason="never shipped")
        _first_beats(tenant, created, op)
    return DemoTenant(tenant, actors, created, created=True)


def seed_globex(system: Actor) -> DemoTenant:
    tenant = Tenant.objects.filter(slug="globex").first()
    if tenant is not None:
        return DemoTenant(tenant, ensure_users(tenant, system), list(AgentInstance.objects.filter(tenant=tenant)))
    tenant = tenant_create(slug="globex", name="Globex Corporation", actor=system)
    actors = ensure_users(tenant, system)
    op = actors[Role.OPERATOR]
    with actor_context(op, tenant):
        dev = services.environment_create(tenant=tenant, name="dev", tier="dev", actor=op)
        prod = services.environment_create(tenant=tenant, name="prod-us", tier="prod", actor=op)
        local = services.provider_create(tenant=tenant, name="globex-runtime", type="local", actor=op)
        helper = services.template_create(
            tenant=tenant,
            name="hr-helper",
            description="Answers HR policy questions for employees.",
            owners=["people@globex.example"],
            tags=["hr", "internal"],
        )
        tools = [
            {"name": "wiki.search", "risk": "low", "data_scopes": ["wiki:read"]},
            {"name": "hris.update", "risk": "high"},
        ]
        v1 = services.version_create(
            tenant=tenant, template=helper, version_label="1.0.0", genome=_genome("gpt-4.1", "hr v1", tools), actor=op
        )
        v1 = _walk(v1, ["TESTING", "PASS", "CANDIDATE", "APPROVED"], actors)
        services.version_create(
            tenant=tenant,
            template=helper,
            version_label="1.1.0",
            genome=_genome("gpt-4.1", "hr v1.1", tools, 0.3),
            parent=v1,
            actor=op,
        )
        created = [
            services.instance_transition(
                instance=services.instance_create(
                    tenant=tenant, version=v1, environment=prod, provider=local, name="hr-helper-prod", actor=op
                ),
                to="ACTIVE",
                actor=op,
            ),
            services.instance_create(
                tenant=tenant, version=v1, environment=dev, provider=local, name="hr-helper-dev", actor=op
            ),
        ]
        _first_beats(tenant, created, op)
    return DemoTenant(tenant, actors, created, created=True)


def seed_registry_demo() -> list[DemoTenant]:
    system = Actor.system("system:seed_demo")
    with actor_context(system):
        demos = [seed_acme(system), seed_globex(system)]
        _ensure_multi_tenant_user([d.tenant for d in demos], system)
    return demos
