"""Lists run a constant number of queries whatever their length (SPEC §10: no N+1), for 10 and 200 rows,
with every row on one page so each row is serialized."""

import pytest

from audit.choices import EventType
from audit.recording import recorded_bulk_create
from audit.services import record_change
from tests.conftest import assert_constant_queries, count_queries
from tests.factories import (
    EnvironmentFactory,
    InstanceFactory,
    ProviderFactory,
    TemplateFactory,
    VersionFactory,
    make_api_key,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(tenant):
    return TemplateFactory(tenant=tenant, tags=["support", "tier-1"])


def version_rows(template):
    def make(n):
        parent = VersionFactory(template=template)
        VersionFactory.create_batch(n - 1, template=template, parent=parent)

    return make


def instance_rows(template):
    def make(n):
        version = VersionFactory(template=template)
        env = EnvironmentFactory(tenant=template.tenant)
        provider = ProviderFactory(tenant=template.tenant)
        InstanceFactory.create_batch(n, version=version, environment=env, provider=provider)

    return make


def audit_rows(tenant):
    def make(n):
        for _ in range(n):
            record_change(tenant=tenant, event_type=EventType.TEMPLATE_CHANGED, target=tenant, payload={"n": 1})

    return make


CASES = {
    "environments": lambda t, tpl: lambda n: EnvironmentFactory.create_batch(n, tenant=t),
    "providers": lambda t, tpl: lambda n: ProviderFactory.create_batch(n, tenant=t),
    "templates": lambda t, tpl: lambda n: TemplateFactory.create_batch(n, tenant=t, tags=["support"]),
    "versions": lambda t, tpl: version_rows(tpl),
    "versions?tags=support&ordering=-updated_at&search=1.0": lambda t, tpl: version_rows(tpl),
    "versions?lifecycle_state=DRAFT&eval_status=PENDING": lambda t, tpl: version_rows(tpl),
    "instances": lambda t, tpl: instance_rows(tpl),
    "instances?state=PROVISIONING&health=never&ordering=name": lambda t, tpl: instance_rows(tpl),
    "audit": lambda t, tpl: audit_rows(t),
    "audit?event_type=TEMPLATE_UPDATED": lambda t, tpl: audit_rows(t),
    "api-keys": lambda t, tpl: lambda n: [make_api_key(t, ["viewer"]) for _ in range(n)],
}


@pytest.mark.parametrize("endpoint", CASES)
def test_list_runs_a_constant_number_of_queries(admin_member, tenant, template, endpoint):
    path, _, query = endpoint.partition("?")
    url = f"/api/v1/{path}/?page_size=1000" + (f"&{query}" if query else "")
    make_rows = CASES[endpoint](tenant, template)
    seen = []

    def request():
        response = admin_member.client.get(url)
        assert response.status_code == 200, response.json()
        seen.append(len(response.json()["results"]))

    assert_constant_queries(make_rows, request)

    assert seen[-1] >= 200, seen  # the second measurement really serialized the 200 rows
    assert seen[-1] > seen[0]


def test_evaluations_list_runs_a_constant_number_of_queries(admin_member, tenant, template):
    from registry.models import EvaluationResult

    version = VersionFactory(template=template)

    def make_rows(n):
        recorded_bulk_create(
            [EvaluationResult(tenant=tenant, version=version, suite=f"s{i}", status="PASS") for i in range(n)]
        )

    def request():
        response = admin_member.client.get(f"/api/v1/versions/{version.pk}/evaluations/?page_size=1000")
        assert response.status_code == 200, response.json()

    assert_constant_queries(make_rows, request)


def test_lineage_queries_grow_with_depth_not_with_children(admin_member, template):
    root = VersionFactory(template=template)

    def make_rows(n):
        VersionFactory.create_batch(n, template=template, parent=root)

    def request():
        response = admin_member.client.get(f"/api/v1/versions/{root.pk}/lineage/")
        assert response.status_code == 200

    assert_constant_queries(make_rows, request)


def test_lineage_is_one_query_whatever_the_depth(admin_member, template):
    """One recursive CTE for every ancestor (nearest first), on SQLite and PostgreSQL alike; the API's
    lineage costs the same for a chain of 3 and of 60."""
    from registry.selectors import version_lineage

    chain = [VersionFactory(template=template)]

    def make_rows(n):
        for _ in range(n):
            chain.append(VersionFactory(template=template, parent=chain[-1]))

    def request():
        response = admin_member.client.get(f"/api/v1/versions/{chain[-1].pk}/lineage/")
        assert response.status_code == 200
        assert [row["id"] for row in response.json()["ancestors"]] == [str(v.pk) for v in reversed(chain[:-1])]

    assert_constant_queries(make_rows, request, small=3, large=60)
    assert count_queries(lambda: version_lineage(chain[-1])) == 1
    assert [v.pk for v in version_lineage(chain[-1])] == [v.pk for v in reversed(chain[:-1])]
    assert version_lineage(chain[0]) == []


def test_the_version_list_embeds_stored_genomes_verbatim(admin_member, template):
    """The 1000-row list emits each stored canonical text verbatim (no Python dict built per row and no
    re-serialization: the text is only checked to be one readable JSON object), while a tampered text
    that no longer parses is still shown as the detail read shows it (a string) and the body stays valid
    JSON. (tests/registry/test_unreadable_genome.py: stored texts that must not be embedded.)"""
    import json

    import registry.models
    from tests.helpers import tamper_genome

    versions = VersionFactory.create_batch(30, template=template)
    broken = VersionFactory(template=template)
    tamper_genome(broken, '{"model_config": ')
    stored = {
        str(v.pk): registry.models.AgentVersion.objects.values_list("genome", flat=True).get(pk=v.pk) for v in versions
    }

    response = admin_member.client.get("/api/v1/versions/?page_size=1000")
    assert response.status_code == 200
    rows = {row["id"]: row for row in json.loads(response.content)["results"]}
    assert rows[str(broken.pk)]["genome"] == '{"model_config": '
    for pk, genome in stored.items():
        assert rows[pk]["genome"] == genome
        assert f'"genome":{genome.canonical_text},' in response.content.decode()  # byte for byte the stored text


def test_creating_a_version_asks_nothing_the_database_settles(admin_member, tenant, template):
    # The template was read (and its tenant checked) by the request; the new id is a fresh UUID; the label is
    # held by the unique constraint: no existence query for any of them, and no savepoint around the insert.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import make_genome

    body = {"template": str(template.pk), "version_label": "9.9.9", "genome": make_genome()}
    with CaptureQueriesContext(connection) as ctx:
        response = admin_member.client.post("/api/v1/versions/", body, format="json")
    assert response.status_code == 201, response.json()
    statements = [q["sql"] for q in ctx.captured_queries]
    assert not [s for s in statements if s.startswith('SELECT 1 AS "a"')], statements
    assert sum(s.startswith('INSERT INTO "registry_agentversion"') for s in statements) == 1
    # The one savepoint is the service's transaction, nested in the test's; none wraps the insert itself.
    assert [s.split()[0] for s in statements].count("SAVEPOINT") == 1, statements
    again = admin_member.client.post("/api/v1/versions/", body, format="json")
    assert again.status_code == 409 and "already has a version with this label" in again.content.decode()
