import uuid

from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client

from arm.bench import measure, summary_row
from arm.context import Actor, actor_context
from arm.models import ApiKey, Tenant
from arm.runtime import tune_gc
from registry.bench import bench_version
from registry.models import AgentTemplate, AgentVersion


class Command(BaseCommand):
    help = (
        "Benchmark the registry API over Django's test client (full middleware, auth, serialization): "
        "version list (page of 1000) and version detail with hash verification. Creates a throwaway "
        "tenant: run it on a scratch database."
    )

    def add_arguments(self, parser):
        parser.add_argument("--versions", type=int, default=1000, help="versions to create in the tenant")
        parser.add_argument("--iterations", type=int, default=100)

    def handle(self, *args, versions, iterations, **options):
        tune_gc()  # measure the process as arm.wsgi serves it
        tenant = Tenant.objects.create(slug=f"bench-{uuid.uuid4().hex[:8]}", name="Benchmark")
        template = AgentTemplate.objects.create(tenant=tenant, name="bench-agent", owners=["bench@example.com"])
        rows = [bench_version(i, tenant=tenant, template=template, version_label=f"1.0.{i}") for i in range(versions)]
        AgentVersion.objects.bulk_create(rows, batch_size=1000)
        full, prefix, key_hash = ApiKey.generate()
        ApiKey.objects.create(tenant=tenant, name="bench", prefix=prefix, key_hash=key_hash, roles=["operator"])
        client = Client(HTTP_AUTHORIZATION=f"Bearer {full}")
        target = rows[len(rows) // 2].pk

        def list_page():
            response = client.get("/api/v1/versions/", {"page_size": 1000})
            assert response.status_code == 200, response.content[:200]

        def detail():
            response = client.get(f"/api/v1/versions/{target}/")
            assert response.status_code == 200 and response.json()["integrity"]["status"] == "VERIFIED"

        with actor_context(Actor.system("system:bench"), tenant):
            list_samples = measure(list_page, max(10, iterations // 5))
            detail_samples = measure(detail, iterations)
        self.stdout.write(f"database: {connection.vendor}; tenant {tenant.slug} with {versions} versions")
        self.stdout.write(summary_row("GET /api/v1/versions/?page_size=1000", list_samples))
        self.stdout.write(summary_row("GET /api/v1/versions/{id}/ (verifies + records)", detail_samples))
