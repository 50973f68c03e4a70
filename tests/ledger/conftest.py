import pytest

from tests.factories import InstanceFactory, TemplateFactory, VersionFactory

USAGE = "/api/v1/usage/"
OTLP = "/otlp/v1/traces"


@pytest.fixture
def template(tenant):
    return TemplateFactory(tenant=tenant, tags=["support", "tier-1"])


@pytest.fixture
def instance(template):
    return InstanceFactory(version=VersionFactory(template=template))


@pytest.fixture
def other_instance(other_tenant):
    return InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=other_tenant)))


@pytest.fixture
def ingest(operator):
    """POST a usage batch (default: as the operator); returns the response."""

    def call(entries, client=None):
        return (client or operator.client).post(USAGE, {"entries": entries}, format="json")

    return call
