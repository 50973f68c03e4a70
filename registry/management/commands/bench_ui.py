import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.test import Client

from arm.bench import measure, percentile, summary_row
from arm.models import Membership, Tenant
from arm.runtime import tune_gc
from registry.bench import bench_version
from registry.choices import EvalStatus, VersionState
from registry.models import AgentTemplate, AgentVersion

STATES = [VersionState.DRAFT, VersionState.TESTING, VersionState.CANDIDATE, VersionState.APPROVED]


class Rollback(Exception):
    pass


class Command(BaseCommand):
    help = (
        "Benchmark the operator UI over Django's test client (full middleware, session auth, templates): "
        "the Directory versions page (50 rows) out of --versions versions in a throwaway tenant. Everything "
        "runs in one transaction that is rolled back, so the database is left as it was; --keep commits the "
        "data and runs ANALYZE first (use a scratch database)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--versions", type=int, default=10_000)
        parser.add_argument("--templates", type=int, default=100)
        parser.add_argument("--iterations", type=int, default=100)
        parser.add_argument("--keep", action="store_true", help="commit the benchmark tenant instead of rolling back")

    def handle(self, *args, versions, templates, iterations, keep, **options):
        tune_gc()  # measure the process as arm.wsgi serves it
        if keep:
            # Committed data, and planner statistics as a long-running database would have them.
            client, target = self.setup(versions, templates)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            self.measure(client, target, versions, templates, iterations)
            return
        try:
            with transaction.atomic():
                self.run(versions, templates, iterations)
                raise Rollback
        except Rollback:
            self.stdout.write("(benchmark data rolled back)")

    def run(self, versions: int, templates: int, iterations: int) -> None:
        client, target = self.setup(versions, templates)
        self.measure(client, target, versions, templates, iterations)

    def setup(self, versions: int, templates: int):
        tenant = Tenant.objects.create(slug=f"bench-ui-{uuid.uuid4().hex[:8]}", name="UI benchmark")
        template_rows = AgentTemplate.objects.bulk_create(
            [
                AgentTemplate(tenant=tenant, name=f"bench-agent-{t:03d}", owners=["bench@example.com"], tags=["bench"])
                for t in range(templates)
            ]
        )
        rows = [
            bench_version(
                i,
                tenant=tenant,
                template=template_rows[i % templates],
                version_label=f"1.{i // templates}.0",
                lifecycle_state=STATES[i % len(STATES)],
                eval_status=EvalStatus.PASS if i % 3 else EvalStatus.PENDING,
            )
            for i in range(versions)
        ]
        AgentVersion.objects.bulk_create(rows, batch_size=1000)
        user = get_user_model().objects.create_user(username=f"bench-ui-{uuid.uuid4().hex[:8]}")
        Membership.objects.create(tenant=tenant, user=user, roles=["viewer"])
        client = Client()
        client.force_login(user)
        return client, rows[len(rows) // 2].pk

    def measure(self, client, target, versions: int, templates: int, iterations: int) -> None:
        def get(path, params=None, **headers):
            def call():
                response = client.get(path, params or {}, **headers)
                assert response.status_code == 200, (path, response.status_code)

            return call

        cases = [
            ("Directory versions, 50 rows (full page)", get("/directory/versions/", {"page_size": 50})),
            (
                "Directory versions, htmx results partial",
                get(
                    "/directory/versions/",
                    {"page_size": 50, "ordering": "-updated_at"},
                    HTTP_HX_REQUEST="true",
                    HTTP_HX_TARGET="directory-results",
                ),
            ),
            (
                "Directory versions, state + search filter",
                get("/directory/versions/", {"page_size": 50, "lifecycle_state": "APPROVED", "search": "1.4"}),
            ),
            ("Directory versions, page 100", get("/directory/versions/", {"page_size": 50, "page": 100})),
            ("Directory templates, 50 rows", get("/directory/templates/", {"page_size": 50})),
            (
                "Version drawer (verifies + records)",
                get(f"/versions/{target}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="drawer-root"),
            ),
        ]
        self.stdout.write(f"database: {connection.vendor}; {versions} versions in {templates} templates")
        first_p95 = None
        for name, call in cases:
            samples = measure(call, iterations)
            first_p95 = first_p95 if first_p95 is not None else percentile(samples, 95)
            self.stdout.write(summary_row(name, samples))
        verdict = "OK" if first_p95 < 50 else "OVER"
        self.stdout.write(f"goal: Directory page (50 of {versions}) p95 < 50 ms: {first_p95:.2f} ms {verdict}")
