"""Names people pick and others select by (environments, providers, templates) are unique per tenant
ignoring case, and must be written in Unicode NFKC form: `Prod` and `prod` cannot both exist (409 on the
name, held by the database too), and the full-width `ｐｒｏｄ` (which renders like `prod`) is refused with
the name to write instead. Version labels stay exact (SemVer compares pre-release identifiers by case)."""

import pytest
from django.db import IntegrityError, transaction

from registry.models import AgentTemplate, Environment, Provider
from tests.factories import EnvironmentFactory, ProviderFactory, TemplateFactory, TenantFactory
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

KINDS = {
    "environments": ({"tier": "dev"}, Environment, EnvironmentFactory),
    "providers": ({"type": "local"}, Provider, ProviderFactory),
    "templates": ({"owners": ["ops@example.com"]}, AgentTemplate, TemplateFactory),
}


def create(member, kind, name):
    extra, _, _ = KINDS[kind]
    return member.client.post(f"/api/v1/{kind}/", {"name": name, **extra}, format="json")


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("taken", ["Prod", "PROD", "prod"])
def test_a_name_differing_only_in_case_is_taken(operator, kind, taken):
    assert create(operator, kind, "prod").status_code == 201

    body = assert_error(create(operator, kind, taken), 409, "conflict")
    assert list(body["errors"]) == ["name"], body
    assert KINDS[kind][1].objects.filter(name__iexact="prod").count() == 1


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(("name", "nfkc"), [("ｐｒｏｄ", "prod"), ("ﬁnance", "finance"), ("eu①", "eu1")])
def test_a_name_not_in_nfkc_form_is_refused_naming_the_form_to_use(operator, kind, name, nfkc):
    body = assert_error(create(operator, kind, name), 400, "validation_error")
    assert list(body["errors"]) == ["name"], body
    assert f"'{nfkc}'" in body["errors"]["name"][0], body
    assert not KINDS[kind][1].objects.exists()


@pytest.mark.parametrize("kind", list(KINDS))
def test_renaming_to_another_case_of_its_own_name_is_allowed_but_not_to_anothers(operator, tenant, kind):
    _, _, factory = KINDS[kind]
    mine, other = factory(tenant=tenant, name="prod"), factory(tenant=tenant, name="staging")

    renamed = operator.client.patch(f"/api/v1/{kind}/{mine.pk}/", {"name": "Prod"}, format="json")
    assert renamed.status_code == 200, renamed.json()
    assert renamed.json()["name"] == "Prod"  # the spelling given is kept

    body = assert_error(
        operator.client.patch(f"/api/v1/{kind}/{other.pk}/", {"name": "PROD"}, format="json"), 409, "conflict"
    )
    assert list(body["errors"]) == ["name"]


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_database_holds_the_rule_when_validation_is_skipped(tenant, kind):
    _, model, factory = KINDS[kind]
    factory(tenant=tenant, name="prod")
    with pytest.raises(IntegrityError), transaction.atomic():
        factory(tenant=tenant, name="PROD")  # a plain save: no full_clean
    assert model.objects.filter(tenant=tenant).count() == 1


@pytest.mark.parametrize("kind", list(KINDS))
def test_other_tenants_may_use_the_same_name(tenant, kind):
    _, model, factory = KINDS[kind]
    factory(tenant=tenant, name="prod")
    factory(tenant=TenantFactory(), name="PROD")
    assert model.objects.filter(name__iexact="prod").count() == 2


def test_version_labels_stay_exact(operator, tenant):
    from tests.factories import make_genome

    template = TemplateFactory(tenant=tenant)
    for label in ("1.0.0-rc1", "1.0.0-RC1"):
        body = {"template": str(template.pk), "version_label": label, "genome": make_genome()}
        response = operator.client.post("/api/v1/versions/", body, format="json")
        assert response.status_code == 201, response.json()


def test_the_migration_stops_on_names_that_already_differ_only_in_case(tenant):
    """Rows written before the rule: the migration names each clash instead of renaming anything."""
    import importlib

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("registry.migrations.0006_names_unique_ignoring_case")
    with connection.cursor() as cursor:  # as before the migration (the test's rollback restores it)
        cursor.execute("DROP INDEX environment_unique_name_ci_per_tenant")
    EnvironmentFactory(tenant=tenant, name="prod")
    EnvironmentFactory(tenant=tenant, name="Prod")
    ProviderFactory(tenant=tenant, name="prod")  # another model: no clash

    with pytest.raises(RuntimeError, match=r"rename all but one of each.*: Environment Prod / prod \(tenant "):
        migration.refuse_names_differing_only_in_case(apps, None)


@pytest.mark.parametrize("owners", [["ops@example.com", "OPS@example.com"], ["alice", "Alice"]])
def test_owners_that_differ_only_in_case_or_form_repeat(operator, owners):
    response = operator.client.post("/api/v1/templates/", {"name": "bot", "owners": owners}, format="json")
    body = assert_error(response, 400, "validation_error")
    assert body["errors"] == {"owners": ["Owners must not repeat (compared ignoring case)."]}, body
