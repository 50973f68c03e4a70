"""GET /api/v1/runtime/context/: one document a runtime reads about itself (its instance, version and
tools with their call names, the policy as it applies to each tool now, the budget left), and nothing of any
other instance."""

from decimal import Decimal

import pytest
from django.utils import timezone

from policies.models import InstanceSpend
from policies.services import spend_periods
from tests.conftest import _client, count_queries
from tests.factories import make_api_key
from tests.helpers import assert_error
from tests.policies.factories import PolicyFactory, make_instance

URL = "/api/v1/runtime/context/"
TOOLS = [
    {"name": "crm.lookup", "risk": "low", "data_scopes": ["crm:read"]},
    {"name": "email.send", "risk": "high", "call_name": "send_mail"},
    {"name": "db.drop", "risk": "critical"},
    {"name": "notes.read"},
]


@pytest.fixture
def limited(tenant):
    return PolicyFactory(
        tenant=tenant,
        autonomy_tier=2,
        denied_tools=["db.*"],
        cost_limit_daily_usd=Decimal("10.00"),
        cost_limit_monthly_usd=None,
    )


@pytest.fixture
def agent(tenant, limited):
    """An instance under ``limited`` and the client of a runtime key bound to it."""
    instance = make_instance(tenant, policy=limited, tools=TOOLS)
    return instance, _client(make_api_key(tenant, ["runtime"], instance=instance)[1])


def test_a_bound_key_reads_its_own_context(agent, limited, evaluate):
    instance, client = agent
    evaluate(instance, "crm.lookup", estimated_cost_usd="2.50")
    response = client.get(URL)
    assert response.status_code == 200, response.json()
    data = response.json()
    assert data["instance"]["id"] == str(instance.pk) and data["instance"]["state"] == "ACTIVE"
    assert data["instance"]["health"] == "never"
    assert data["instance"]["environment"] == {
        "id": str(instance.environment.pk),
        "name": instance.environment.name,
        "tier": "dev",
    }
    assert data["instance"]["provider"]["id"] == str(instance.provider.pk)
    version = data["version"]
    assert (version["id"], version["genome_hash"]) == (str(instance.version.pk), instance.version.genome_hash)
    assert version["tools"] == [
        {"name": "crm.lookup", "call_name": "crm_lookup", "risk": "low", "data_scopes": ["crm:read"]},
        {"name": "email.send", "call_name": "send_mail", "risk": "high", "data_scopes": []},
        {"name": "db.drop", "call_name": "db_drop", "risk": "critical", "data_scopes": []},
        {"name": "notes.read", "call_name": "notes_read", "risk": "medium", "data_scopes": []},
    ]
    policy = data["policy"]
    assert (policy["id"], policy["revision"], policy["autonomy_tier"]) == (str(limited.pk), 1, 2)
    assert policy["denied_tools"] == ["db.*"] and policy["cost_limit_daily_usd"] == "10.00"
    assert policy["cost_limit_monthly_usd"] is None
    assert policy["tools"] == {
        "crm.lookup": "allow",
        "email.send": "needs_approval",
        "db.drop": "deny",
        "notes.read": "needs_approval",
    }
    assert data["budget"]["day"] == {"spent_usd": "2.5000", "limit_usd": "10.00", "remaining_usd": "7.5000"}
    assert data["budget"]["month"] == {"spent_usd": "2.5000", "limit_usd": None, "remaining_usd": None}


def test_the_tools_follow_the_instance_as_it_is_now(tenant, agent, limited):
    instance, client = agent
    InstanceSpend.objects.filter(instance=instance).delete()
    from django.utils import timezone

    from policies.services import spend_periods

    today, month = spend_periods(timezone.now())
    InstanceSpend.objects.create(
        tenant=tenant, instance=instance, period="day", period_start=today, amount_usd=Decimal("10.5")
    )
    data = client.get(URL).json()
    assert set(data["policy"]["tools"].values()) == {"deny"}  # over its daily limit: every call is denied
    assert data["budget"]["day"]["remaining_usd"] == "0"


def test_reported_usage_counts_when_it_is_larger(tenant, agent):
    instance, client = agent
    today, _ = spend_periods(timezone.now())
    InstanceSpend.objects.create(
        tenant=tenant, instance=instance, period="day", period_start=today, amount_usd=1, actual_usd=Decimal("4.25")
    )
    assert client.get(URL).json()["budget"]["day"]["spent_usd"] == "4.250000"


def test_an_instance_without_a_policy_says_so(tenant):
    bare = make_instance(tenant, policy=None, tools=TOOLS)
    data = _client(make_api_key(tenant, ["runtime"], instance=bare)[1]).get(URL).json()
    assert data["policy"] is None
    assert data["budget"]["day"] == {"spent_usd": "0", "limit_usd": None, "remaining_usd": None}


def test_a_bound_key_reads_no_other_instance(tenant, agent, limited):
    _, client = agent
    other = make_instance(tenant, policy=limited)
    assert_error(client.get(URL, {"instance": str(other.pk)}), 403, "instance_binding")


def test_unbound_keys_and_members_name_the_instance(tenant, agent, viewer, operator):
    instance, _ = agent
    unbound = _client(make_api_key(tenant, ["runtime"], name="host key")[1])
    for client in (unbound, viewer.client, operator.client):
        assert client.get(URL, {"instance": str(instance.pk)}).json()["instance"]["id"] == str(instance.pk)
    assert_error(unbound.get(URL), 400, "validation_error", contains=["instance"])
    assert_error(unbound.get(URL, {"instance": "nope"}), 400, "validation_error")


def test_another_tenants_instance_answers_404(agent, outsider):
    instance, _ = agent
    assert_error(outsider.client.get(URL, {"instance": str(instance.pk)}), 404, "not_found")


def test_it_reads_in_a_fixed_number_of_queries(agent):
    instance, client = agent
    client.get(URL)
    # the key, the instance with its version, environment, provider and policy, the spend counters
    assert count_queries(lambda: client.get(URL)) == 3
