"""``manage.py bench_policy [--iterations N] [--tenant SLUG]``: p50/p95/p99 of the pure decision
function and of ``POST /api/v1/policy/evaluate/`` over Django's test client (full middleware, API-key
auth, validation, the evaluation transaction and its writes). Builds its own data in a fresh tenant
(or a new instance in ``--tenant``): run it on a scratch database. Goals (SPEC §10): p95 < 1 ms for the
decision function, < 10 ms over HTTP."""

import uuid
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client
from django.utils import timezone

from arm.bench import measure, percentile
from arm.commandutils import get_tenant
from arm.context import Actor, actor_context
from arm.models import ApiKey, Tenant
from arm.runtime import tune_gc
from policies.engine import EvaluationInput, decide
from policies.models import PolicyDecision, PolicyEnvelope
from policies.services import params_hash, policy_input
from registry.choices import InstanceState, VersionState
from registry.genome import genome_hash, tool_risk
from registry.models import AgentInstance, AgentTemplate, AgentVersion, Environment, Provider

TOOLS = [{"name": f"tool{i}.run", "risk": ("low", "medium", "high", "critical")[i % 4]} for i in range(30)] + [
    {"name": "crm.lookup", "risk": "low", "data_scopes": ["crm:read"]},
    {"name": "email.send", "risk": "high"},
]


class Command(BaseCommand):
    help = "Benchmark policy evaluation: the pure decision function and the HTTP endpoint (p50/p95/p99)."

    def add_arguments(self, parser):
        parser.add_argument("--iterations", type=int, default=500, help="HTTP calls per scenario")
        parser.add_argument("--tenant", help="build the throwaway instance in this tenant (slug)")

    def handle(self, *args, iterations, tenant=None, **options):
        tune_gc()  # measure the process as arm.wsgi serves it
        system = Actor.system("system:bench")
        tenant = (
            get_tenant(tenant)
            if tenant
            else Tenant.objects.create(slug=f"bench-{uuid.uuid4().hex[:8]}", name="Policy benchmark")
        )
        instance, policy, secret = self._build(tenant)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        rows = []

        # The pure decision function on realistic inputs (30-tool manifest, globs, limits, scopes).
        loaded = AgentInstance.objects.select_related("version", "policy").get(pk=instance.pk)
        inp = EvaluationInput(
            instance_id=loaded.pk,
            instance_state=loaded.state,
            integrity_status=loaded.version.integrity_status,
            tool="crm.lookup",
            manifest_risk=tool_risk(loaded.version.genome, "crm.lookup"),
            policy=policy_input(loaded.policy),
            params_hash=params_hash({"customer_id": 42}),
            now=timezone.now(),
            data_scopes=("crm:read",),
            estimated_cost_usd=Decimal("0.01"),
            spend_today_usd=Decimal("3.50"),
            spend_month_usd=Decimal("120.00"),
        )
        assert decide(inp).decision == "ALLOW"
        engine = measure(lambda: decide(inp), max(20000, iterations * 40), warmup=500)
        rows.append(("decide() pure function: ALLOW", engine, "us"))

        def call(body, expected):
            def run():
                response = client.post("/api/v1/policy/evaluate/", body, content_type="application/json")
                assert response.status_code == 200, response.content[:300]
                assert response.json()["decision"] == expected, response.json()

            return run

        base = {"instance": str(instance.pk), "params": {"customer_id": 42}}
        scenarios = [
            ("POST evaluate: ALLOW (low risk, no estimate)", {**base, "tool": "crm.lookup"}, "ALLOW"),
            (
                "POST evaluate: ALLOW + spend under limits",
                {**base, "tool": "crm.lookup", "data_scopes": ["crm:read"], "estimated_cost_usd": "0.0001"},
                "ALLOW",
            ),
            ("POST evaluate: NEEDS_APPROVAL (de-duplicated)", {**base, "tool": "email.send"}, "NEEDS_APPROVAL"),
            ("POST evaluate: DENY (undeclared tool)", {**base, "tool": "shell.exec"}, "DENY"),
        ]
        with actor_context(system, tenant):
            for name, body, expected in scenarios:
                rows.append((name, measure(call(body, expected), iterations, warmup=20), "ms"))

        server = sorted(PolicyDecision.objects.filter(instance=instance).values_list("duration_us", flat=True))
        self.stdout.write(f"database: {connection.vendor}; tenant {tenant.slug}; instance {instance.pk}")
        self.stdout.write(f"{'scenario':<48} {'n':>6} {'p50':>10} {'p95':>10} {'p99':>10}")
        for name, samples, unit in rows:
            scale = 1000 if unit == "us" else 1
            p50, p95, p99 = (percentile(samples, p) * scale for p in (50, 95, 99))
            self.stdout.write(f"{name:<48} {len(samples):>6} {p50:>7.3f} {unit} {p95:>7.3f} {unit} {p99:>7.3f} {unit}")
        if server:
            self.stdout.write(
                f"{'  service time inside evaluate (duration_us)':<48} {len(server):>6} "
                f"{server[len(server) // 2] / 1000:>7.3f} ms {server[int(len(server) * 0.95)] / 1000:>7.3f} ms "
                f"{server[int(len(server) * 0.99)] / 1000:>7.3f} ms"
            )

    def _build(self, tenant):
        """A template, an APPROVED version with a 32-tool manifest, an ACTIVE prod instance under a tier-2
        policy with limits, and a runtime key bound to it. Direct inserts: this is throwaway data."""
        suffix = uuid.uuid4().hex[:8]
        genome = {
            "model_config": {"provider": "openai", "name": "gpt-4.1"},
            "prompt_bundle_hash": "sha256:" + "ab" * 32,
            "tool_manifest": TOOLS,
        }
        template = AgentTemplate.objects.create(tenant=tenant, name=f"bench-{suffix}", owners=["bench@example.com"])
        version = AgentVersion.objects.create(
            tenant=tenant,
            template=template,
            version_label="1.0.0",
            genome=genome,
            genome_hash=genome_hash(genome),
            lifecycle_state=VersionState.APPROVED,
            created_by="system:bench",
        )
        env = Environment.objects.create(tenant=tenant, name=f"bench-prod-{suffix}", tier="prod")
        provider = Provider.objects.create(tenant=tenant, name=f"bench-local-{suffix}", type="local")
        policy = PolicyEnvelope.objects.create(
            tenant=tenant,
            name=f"bench-tier2-{suffix}",
            autonomy_tier=2,
            allowed_tools=["crm.*", "email.*", "tool1*.run", "tool2*.run", "reports.*", "tickets.*"],
            denied_tools=["*.delete", "shell.*", "deploy.*"],
            data_scopes=["crm:*", "tickets:*", "email:send", "wiki:read"],
            cost_limit_daily_usd=Decimal("1000000"),
            cost_limit_monthly_usd=Decimal("9000000"),
        )
        instance = AgentInstance.objects.create(
            tenant=tenant,
            version=version,
            environment=env,
            provider=provider,
            policy=policy,
            name=f"bench-agent-{suffix}",
            state=InstanceState.ACTIVE,
        )
        full, prefix, key_hash = ApiKey.generate()
        ApiKey.objects.create(
            tenant=tenant, name="bench runtime", prefix=prefix, key_hash=key_hash, roles=["runtime"], instance=instance
        )
        return instance, policy, full
