import pytest

from tests.policies.factories import PolicyFactory, make_instance

EVALUATE = "/api/v1/policy/evaluate/"


@pytest.fixture
def policy(tenant):
    return PolicyFactory(tenant=tenant, autonomy_tier=3)


@pytest.fixture
def instance(tenant, policy):
    return make_instance(tenant, policy=policy)


@pytest.fixture
def evaluate(operator):
    """POST an evaluation as ``client`` (default: the operator); returns the response."""

    def call(instance, tool="crm.lookup", client=None, **body):
        payload = {"instance": str(instance.pk), "tool": tool, **body}
        return (client or operator.client).post(EVALUATE, payload, format="json")

    return call
