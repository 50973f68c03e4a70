"""arm/compiled.py: a query compiled once answers what its plain queryset answers, field for field, with
its select_related objects and annotations; it rests on Django private API (Django pinned to 5.2), so
these tests are what fails when that API changes."""

import uuid
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from arm.compiled import CompiledQuery
from audit.recording import recorded_update
from policies import services as policy_services
from registry.models import AgentInstance
from tenancy import authentication
from tenancy.models import ApiKey
from tests.factories import MembershipFactory, UserFactory, make_api_key
from tests.policies.factories import PolicyFactory, make_instance

pytestmark = pytest.mark.django_db

EVALUATE = "/api/v1/policy/evaluate/"


@pytest.fixture
def instance(tenant):
    return make_instance(tenant, policy=PolicyFactory(tenant=tenant, autonomy_tier=3))


def _state(obj, seen=()) -> dict:
    """Every attribute the ORM set on ``obj`` (fields, annotations) and, recursively, its cached related
    objects (a reverse one-to-one caches its way back: named, not followed)."""
    values = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    related = {
        name: (
            None
            if other is None
            else ("back to", type(other).__name__)
            if any(other is s for s in seen)
            else _state(other, (*seen, obj))
        )
        for name, other in obj._state.fields_cache.items()
    }
    return {"model": type(obj).__name__, "values": values, "related": related}


def _both(query: CompiledQuery, *args, settings) -> tuple[list, list]:
    settings.ARM_COMPILED_QUERIES = False
    plain = query.all(*args)
    settings.ARM_COMPILED_QUERIES = True
    return plain, query.all(*args)


def test_the_key_lookup_answers_as_its_queryset(tenant, settings):
    person = UserFactory()
    MembershipFactory(tenant=tenant, user=person, roles=["operator", "approver"])
    parent, _ = make_api_key(tenant, ["operator"], name="parent")
    recorded_update(ApiKey.objects.filter(pk=parent.pk), revoked_at="2026-01-01T00:00:00Z")
    key, _ = make_api_key(tenant, ["operator"])
    recorded_update(ApiKey.objects.filter(pk=key.pk), principal_user=person, minters=[parent.prefix])

    plain, compiled = _both(authentication._KEY, key.prefix, settings=settings)

    assert [_state(k) for k in compiled] == [_state(k) for k in plain]
    (found,) = compiled
    assert (found.minter_revoked, sorted(found.principal_roles)) == (True, ["approver", "operator"])
    assert found.principal_user == person and found.tenant == tenant
    assert authentication._KEY.all("no-such-prefix") == []


def test_a_key_bound_to_an_instance_carries_the_binding(tenant, instance, settings):
    key, _ = make_api_key(tenant, ["runtime"], instance=instance)
    plain, compiled = _both(authentication._KEY, key.prefix, settings=settings)
    assert [_state(k) for k in compiled] == [_state(k) for k in plain]
    assert compiled[0].instance_binding.instance_id == instance.pk


@pytest.mark.parametrize("keyed", [False, True])
def test_the_evaluated_instance_answers_as_its_queryset(tenant, instance, operator, settings, keyed):
    body = {"instance": str(instance.pk), "tool": "crm.lookup", "estimated_cost_usd": "0.25"}
    if keyed:
        body["idempotency_key"] = "call-1"
    assert operator.client.post(EVALUATE, body, format="json").status_code == 200
    today, month = policy_services.spend_periods(policy_services.timezone.now())
    query = policy_services._EVALUATION_INSTANCE_KEYED if keyed else policy_services._EVALUATION_INSTANCE
    args = (tenant.pk, instance.pk, today, month) + (("call-1",) if keyed else ())

    plain, compiled = _both(query, *args, settings=settings)

    assert [_state(i) for i in compiled] == [_state(i) for i in plain]
    (found,) = compiled
    assert found.spend_day_estimated == 0.25 and found.policy_attachment.policy.name
    assert (found.keyed_tool == "crm.lookup") if keyed else not hasattr(found, "keyed_tool")


def test_arguments_are_bound_on_every_call_not_compiled_in(tenant, settings):
    first, _ = make_api_key(tenant, ["viewer"], name="first")
    second, _ = make_api_key(tenant, ["viewer"], name="second")
    assert authentication.key_lookup(first.prefix).name == "first"
    assert authentication.key_lookup(second.prefix).name == "second"
    other_tenant_instance = uuid.uuid4()
    assert policy_services._EVALUATION_INSTANCE.all(tenant.pk, other_tenant_instance, date.today(), date.today()) == []


def test_it_runs_one_statement_and_compiles_once(tenant, settings):
    key, _ = make_api_key(tenant, ["viewer"])
    query = CompiledQuery(authentication._key, str)
    query.first(key.prefix)
    with CaptureQueriesContext(connection) as queries:
        assert query.first(key.prefix).pk == key.pk
    assert len(queries) == 1
    assert len(query._compiled) == 1


def test_an_argument_that_does_not_appear_exactly_once_is_refused():
    twice = CompiledQuery(lambda name: AgentInstance.objects.filter(name=name).exclude(created_by=name), str)
    with pytest.raises(ValueError, match="exactly once"):
        twice.all("x")
