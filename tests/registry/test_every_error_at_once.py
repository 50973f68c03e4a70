"""The services report every problem of a write at once (``arm.writes.validate``): a taken name comes
with the other errors instead of only after they are fixed. A name lost to a concurrent writer at the
database is the same 409 on the same field with the same message; an integrity error that is not a
taken value is not passed off as one."""

import pytest
from django.db import IntegrityError, connection

from arm.errors import AlreadyTaken
from arm.writes import save
from policies.models import PolicyEnvelope
from registry import services
from registry.models import Environment
from tenancy.context import Actor
from tests.factories import EnvironmentFactory, ProviderFactory, TemplateFactory
from tests.helpers import assert_error, member_with, race

pytestmark = pytest.mark.django_db
OPERATOR = Actor(ref="user:op", roles=frozenset({"operator"}))


def taken(what: str) -> str:
    return f"{what} with this name already exists (names are compared ignoring case)."


def test_a_taken_provider_name_is_reported_with_the_models_other_errors(operator, tenant):
    ProviderFactory(tenant=tenant, name="partner")
    response = operator.client.post("/api/v1/providers/", {"name": "Partner", "type": "federated"}, format="json")

    body = assert_error(response, 400, "validation_error")
    assert body["errors"] == {
        "federation_config": ["A federated provider needs a non-empty federation_config."],
        "name": [taken("A provider")],
    }, body


def test_a_taken_template_name_is_reported_with_the_models_other_errors(operator, tenant):
    TemplateFactory(tenant=tenant, name="triage")
    payload = {"name": "triage", "owners": ["ops@example.com", "OPS@example.com"]}

    body = assert_error(operator.client.post("/api/v1/templates/", payload, format="json"), 400, "validation_error")
    assert body["errors"] == {
        "owners": ["Owners must not repeat (compared ignoring case)."],
        "name": [taken("A template")],
    }, body


def test_a_rename_onto_a_taken_name_is_reported_with_the_models_other_errors(operator, tenant):
    TemplateFactory(tenant=tenant, name="triage")
    mine = TemplateFactory(tenant=tenant, name="billing")
    payload = {"name": "TRIAGE", "owners": ["alice", "Alice"]}

    response = operator.client.patch(f"/api/v1/templates/{mine.pk}/", payload, format="json")

    body = assert_error(response, 400, "validation_error")
    assert body["errors"] == {
        "owners": ["Owners must not repeat (compared ignoring case)."],
        "name": [taken("A template")],
    }, body
    mine.refresh_from_db()
    assert mine.name == "billing"


def test_a_name_taken_after_validation_is_the_same_conflict(tenant, monkeypatch):
    """A concurrent writer takes the name between validation and the insert: the database refuses it, and
    the service answers exactly what validation would have (field, message, 409)."""
    real_validate = services.validate

    def validate_then_lose_the_race(obj, **kwargs):
        real_validate(obj, **kwargs)
        EnvironmentFactory(tenant=tenant, name="PROD")

    monkeypatch.setattr(services, "validate", validate_then_lose_the_race)
    with pytest.raises(AlreadyTaken) as caught:
        services.environment_create(tenant=tenant, actor=OPERATOR, name="prod", tier="dev")

    assert caught.value.message_dict == {"name": [taken("An environment")]}


def test_an_integrity_error_that_is_not_a_taken_value_is_not_reported_as_one(tenant):
    """Only a unique constraint the object breaks becomes "already taken"; a check constraint broken at
    the database (validation skipped) stays the integrity error it is."""
    with pytest.raises(IntegrityError):
        save(PolicyEnvelope(tenant=tenant, name="fine", autonomy_tier=9))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (row locks across connections)")
@pytest.mark.django_db(transaction=True)
def test_creators_racing_for_one_name_in_two_cases_get_the_validation_message(tenant):
    clients = [member_with(tenant, ["operator"], f"op-{i}").client for i in range(2)]
    calls = [
        lambda c=c, name=name: c.post("/api/v1/environments/", {"name": name, "tier": "dev"}, format="json")
        for c, name in zip(clients, ("prod", "PROD"), strict=True)
    ]

    responses = race(calls)

    assert sorted(r.status_code for r in responses) == [201, 409], [r.json() for r in responses]
    [loser] = [r for r in responses if r.status_code == 409]
    assert loser.json()["errors"] == {"name": [taken("An environment")]}, loser.json()
    assert Environment.objects.filter(tenant=tenant).count() == 1
