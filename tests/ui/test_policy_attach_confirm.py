"""Attaching a policy never silently moves an instance off another policy, and a failed policy save lists
every problem at the top with the focus on the first bad field."""

import pytest
from django.urls import reverse

from audit.choices import EventType
from tests.conftest import change_records
from tests.factories import InstanceFactory
from tests.helpers import policy_id_of
from tests.policies.factories import PolicyFactory

pytestmark = pytest.mark.django_db


def test_the_attach_choice_starts_empty(login, compliance, world):
    InstanceFactory(version=world.root, environment=world.dev, provider=world.provider, name="spare")
    page = login(compliance).get(reverse("ui:policy_edit", args=[world.policy.pk])).text
    assert '<option value="" selected disabled>Choose an instance…</option>' in page


def test_replacing_another_policy_asks_first_and_changes_nothing(login, compliance, world, tenant):
    other = PolicyFactory(tenant=tenant, name="stricter")
    client = login(compliance)
    url = reverse("ui:policy_attach", args=[other.pk])

    response = client.post(url, {"instance": str(world.instance.pk), "action": "attach"})

    assert response.status_code == 200
    assert 'data-testid="confirm-replace"' in response.text
    assert f"Replace {world.policy.name}" in response.text
    assert policy_id_of(world.instance) == world.policy.pk
    assert change_records(world.instance, EventType.POLICY_ATTACHED) == []

    response = client.post(url, {"instance": str(world.instance.pk), "action": "attach", "confirm": "replace"})

    assert response.status_code == 302
    assert policy_id_of(world.instance) == other.pk
    assert len(change_records(world.instance, EventType.POLICY_ATTACHED)) == 1


def test_attaching_without_choosing_an_instance_says_so(login, compliance, world):
    response = login(compliance).post(
        reverse("ui:policy_attach", args=[world.policy.pk]), {"instance": "", "action": "attach"}, follow=True
    )
    assert "Choose the instance to attach the policy to." in response.text


def test_a_failed_save_lists_every_problem_and_focuses_the_first(login, compliance, world):
    response = login(compliance).post(
        reverse("ui:policy_edit", args=[world.policy.pk]),
        {"name": "", "autonomy_tier": "2", "approval_timeout_seconds": "0", "cost_limit_daily_usd": "-1"},
    )
    assert response.status_code == 200
    summary = response.text.split('data-testid="error-summary"', 1)[1].split("</div>", 1)[0]
    assert summary.count("<li>") == 3
    assert 'href="#id_name"' in summary and ">Name</a>: This field is required." in summary
    assert "Approval timeout (seconds)" in summary and "Daily cost limit (USD)" in summary
    name_input = "<input" + response.text.split('id="id_name"', 1)[0].rsplit("<input", 1)[1]
    assert "autofocus" in name_input
    assert response.text.count("autofocus") == 1
