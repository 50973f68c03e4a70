"""Tags, owners and roles filters use JSON containment (``arm.filters.json_array_contains``): PostgreSQL's
``@>`` served by a GIN index, SQLite's json_each. Both match whole list elements only."""

import pytest
from django.db import connection

from arm.filters import json_array_contains
from registry.models import AgentTemplate
from tenancy.admin_mixins import admin_tenant_ids
from tests.factories import MembershipFactory, TemplateFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def templates(tenant):
    return {
        "both": TemplateFactory(tenant=tenant, tags=["support", "tier-1"], owners=["ana@example.com"]),
        "support": TemplateFactory(tenant=tenant, tags=["support"], owners=["bo@example.com", "ana"]),
        "prefix": TemplateFactory(tenant=tenant, tags=["support-eu", "sup"], owners=["ana@example.com.au"]),
        "none": TemplateFactory(tenant=tenant, tags=[], owners=["cy@example.com"]),
    }


def names(qs, templates):
    found = set(qs.values_list("pk", flat=True))
    return {name for name, template in templates.items() if template.pk in found}


def test_whole_elements_all_required(templates):
    qs = AgentTemplate.objects.all()
    assert names(json_array_contains(qs, "tags", ["support"]), templates) == {"both", "support"}
    assert names(json_array_contains(qs, "tags", ["support", "tier-1"]), templates) == {"both"}
    assert names(json_array_contains(qs, "tags", ["sup"]), templates) == {"prefix"}
    assert names(json_array_contains(qs, "owners", ["ana@example.com"]), templates) == {"both"}
    assert names(json_array_contains(qs, "tags", ['support"', "%"]), templates) == set()
    assert json_array_contains(qs, "tags", ["", None]).count() == 4  # nothing to match: no filter


def test_api_filters_use_it(viewer, templates):
    data = viewer.client.get("/api/v1/templates/", {"tags": "support,tier-1"}).json()
    assert [row["name"] for row in data["results"]] == [templates["both"].name]
    data = viewer.client.get("/api/v1/templates/", {"owner": "ana"}).json()
    assert [row["name"] for row in data["results"]] == [templates["support"].name]


def test_the_sql_is_containment_on_postgresql_and_json_each_on_sqlite(templates):
    sql = str(json_array_contains(AgentTemplate.objects.all(), "tags", ["support"]).query)
    if connection.vendor == "postgresql":
        assert "@>" in sql and "json_each" not in sql
    else:
        assert "json_each" in sql and "LIKE" not in sql


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_gin_indexes_serve_the_filters_on_postgresql(templates):
    qs = json_array_contains(AgentTemplate.objects.all(), "tags", ["support"])
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = qs.explain()
    assert "template_tags_gin" in plan, plan
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname IN "
            "('template_tags_gin', 'template_owners_gin', 'membership_roles_gin') ORDER BY 1"
        )
        assert [row[0] for row in cursor.fetchall()] == [
            "membership_roles_gin",
            "template_owners_gin",
            "template_tags_gin",
        ]


def test_admin_tenants_come_from_the_roles_list(tenant):
    user = UserFactory(username="multi")
    MembershipFactory(user=user, tenant=tenant, roles=["viewer", "admin"])
    MembershipFactory(user=user, tenant=TenantFactory(), roles=["viewer", "operator"])
    assert admin_tenant_ids(user) == [tenant.pk]
