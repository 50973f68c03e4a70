"""Policy names follow the registry's rule for names people pick and others select by: unique per tenant
ignoring case (`Standard` and `standard` cannot both exist: 409 on the name, held by the database too),
written in Unicode NFKC form (the full-width `ｓｔａｎｄａｒｄ` is refused naming the plain form). The
fixture loader finds an existing policy the same way, and the migration names existing clashes."""

import importlib
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from policies.models import PolicyEnvelope
from tests.factories import TenantFactory
from tests.helpers import assert_error, member_with, race
from tests.policies.factories import PolicyFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/policies/"
TAKEN = "A policy with this name already exists (names are compared ignoring case)."


def create(member, name):
    return member.client.post(URL, {"name": name, "autonomy_tier": 2}, format="json")


@pytest.mark.parametrize("taken", ["Standard", "STANDARD", "standard"])
def test_a_name_differing_only_in_case_is_taken(compliance, tenant, taken):
    assert create(compliance, "standard").status_code == 201

    body = assert_error(create(compliance, taken), 409, "conflict")
    assert body["errors"] == {"name": [TAKEN]}, body
    assert PolicyEnvelope.objects.filter(tenant=tenant, name__iexact="standard").count() == 1


@pytest.mark.parametrize(
    ("name", "nfkc"), [("ｓｔａｎｄａｒｄ", "standard"), ("ﬁnance", "finance"), ("tier①", "tier1")]
)
def test_a_name_not_in_nfkc_form_is_refused_naming_the_form_to_use(compliance, name, nfkc):
    body = assert_error(create(compliance, name), 400, "validation_error")
    assert list(body["errors"]) == ["name"], body
    assert f"'{nfkc}'" in body["errors"]["name"][0], body
    assert not PolicyEnvelope.objects.exists()


def test_renaming_to_another_case_of_its_own_name_is_allowed_but_not_to_anothers(compliance, tenant):
    mine, other = PolicyFactory(tenant=tenant, name="standard"), PolicyFactory(tenant=tenant, name="strict")

    renamed = compliance.client.patch(f"{URL}{mine.pk}/", {"name": "Standard"}, format="json")
    assert renamed.status_code == 200, renamed.json()
    assert renamed.json()["name"] == "Standard" and renamed.json()["revision"] == 2  # the spelling given is kept

    body = assert_error(
        compliance.client.patch(f"{URL}{other.pk}/", {"name": "STANDARD"}, format="json"), 409, "conflict"
    )
    assert body["errors"] == {"name": [TAKEN]}, body
    other.refresh_from_db()
    assert (other.name, other.revision) == ("strict", 1)


def test_the_database_holds_the_rule_when_validation_is_skipped(tenant):
    PolicyFactory(tenant=tenant, name="standard")
    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyFactory(tenant=tenant, name="STANDARD")  # a plain save: no full_clean
    assert PolicyEnvelope.objects.filter(tenant=tenant).count() == 1


def test_other_tenants_may_use_the_same_name(tenant):
    PolicyFactory(tenant=tenant, name="standard")
    PolicyFactory(tenant=TenantFactory(), name="STANDARD")
    assert PolicyEnvelope.objects.filter(name__iexact="standard").count() == 2


def test_the_fixture_loader_finds_a_policy_named_in_another_case(tenant, tmp_path):
    """A re-run whose file spells a name differently skips the policy (it failed on the constraint)."""
    sample = tmp_path / "sample"
    shutil.copytree(Path(settings.BASE_DIR) / "fixtures" / "sample-tenant", sample)
    for stem in ("environments", "providers", "templates"):
        (sample / f"{stem}.yaml").unlink()
    PolicyFactory(tenant=tenant, name="Support-Standard", autonomy_tier=4)  # made by hand: left as is
    out = StringIO()

    call_command("load_fixtures", str(sample), "--tenant", tenant.slug, stdout=out)

    assert "policy envelope support-standard: already exists as Support-Standard, left as is" in out.getvalue()
    assert "1 created, 1 skipped" in out.getvalue(), out.getvalue()
    assert PolicyEnvelope.objects.get(tenant=tenant, name="Support-Standard").autonomy_tier == 4
    assert PolicyEnvelope.objects.filter(tenant=tenant, name__iexact="support-standard").count() == 1


def test_the_migration_stops_on_names_that_already_differ_only_in_case(tenant):
    """Rows written before the rule: the migration names each clash instead of renaming anything."""
    migration = importlib.import_module("policies.migrations.0007_names_unique_ignoring_case")
    with connection.cursor() as cursor:  # as before the migration (the test's rollback restores it)
        cursor.execute("DROP INDEX policy_unique_name_ci_per_tenant")
    PolicyFactory(tenant=tenant, name="standard")
    PolicyFactory(tenant=tenant, name="Standard")
    PolicyFactory(tenant=tenant, name="strict")

    with pytest.raises(
        RuntimeError, match=r"rename all but one of each.*: PolicyEnvelope Standard / standard \(tenant "
    ):
        migration.refuse_names_differing_only_in_case(apps, None)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (row locks across connections)")
@pytest.mark.django_db(transaction=True)
def test_creators_racing_for_one_name_in_two_cases_get_one_policy(tenant):
    clients = [member_with(tenant, ["compliance"], f"co-{i}").client for i in range(2)]
    calls = [
        lambda c=c, name=name: c.post(URL, {"name": name, "autonomy_tier": 2}, format="json")
        for c, name in zip(clients, ("standard", "Standard"), strict=True)
    ]

    responses = race(calls)

    assert sorted(r.status_code for r in responses) == [201, 409], [r.json() for r in responses]
    [loser] = [r for r in responses if r.status_code == 409]
    assert loser.json()["errors"] == {"name": [TAKEN]}, loser.json()
    assert PolicyEnvelope.objects.filter(tenant=tenant).count() == 1
