"""Every write operation of the API refuses a body key it does not know, with a 400 naming it.

The test walks the OpenAPI schema itself, so a write endpoint added later is covered without editing this
file; one whose path names an object of a kind not listed in the ``objects`` fixture fails until it is added. One
mechanism serves them all: ``arm.serializers.ClosedSerializerMixin`` (in ``StrictSerializer`` and
``StrictModelSerializer``), documented as ``additionalProperties: false`` on every request body."""

import re

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.factories import EnvironmentFactory, InstanceFactory, ProviderFactory, TemplateFactory, make_api_key
from tests.helpers import assert_error
from tests.ledger.factories import BudgetFactory, PriceFactory
from tests.notifications.factories import EndpointFactory
from tests.policies.factories import PolicyFactory, make_approval

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch")
UNKNOWN = "zz_not_a_field"


def write_operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (method, path)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if method in WRITE_METHODS and "requestBody" in operation
    )


OPERATIONS = write_operations()


@pytest.fixture
def objects(tenant):
    """One object of each kind a write path can name, in the member's tenant."""
    instance = InstanceFactory(
        version__template=TemplateFactory(tenant=tenant),
        environment=EnvironmentFactory(tenant=tenant),
        provider=ProviderFactory(tenant=tenant),
        policy=PolicyFactory(tenant=tenant),
    )
    key, _ = make_api_key(tenant, ["viewer"])
    return {
        "environments": instance.environment,
        "providers": instance.provider,
        "templates": instance.version.template,
        "versions": instance.version,
        "instances": instance,
        "policies": instance.policy_attachment.policy,
        "approvals": make_approval(instance),
        "api-keys": key,
        "prices": PriceFactory(tenant=tenant),
        "budgets": BudgetFactory(tenant=tenant),
        "notification-endpoints": EndpointFactory(tenant=tenant),
    }


def test_the_schema_has_write_operations_to_walk():
    assert len(OPERATIONS) >= 20, OPERATIONS


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_write_operation_refuses_an_unknown_field_by_name(admin_member, objects, method, path):
    url = path
    if "{" in path:
        kind = path.removeprefix("/api/v1/").split("/", 1)[0]
        assert kind in objects, f"{method.upper()} {path}: add an object of kind {kind!r} to the objects fixture"
        url = re.sub(r"\{[^}]+\}", str(objects[kind].pk), path)
    response = getattr(admin_member.client, method)(url, {UNKNOWN: 1}, format="json")
    data = assert_error(response, 400, "validation_error")
    assert data["errors"].get(UNKNOWN) == ["Unknown field."], (method, path, data)


def test_every_request_body_is_documented_closed():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    for method, path in OPERATIONS:
        body = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        ref = body.get("$ref") or body["allOf"][0]["$ref"]
        assert components[ref.rsplit("/", 1)[-1]].get("additionalProperties") is False, (method, path)
