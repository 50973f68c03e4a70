"""Pages that used to load every row now show one page, sorted in SQL: the policy list, the policy
editor's attached / attachable instances and the incidents' quarantined list run the same number of
queries for 10 rows as for 200, and show at most one page."""

import pytest
from django.urls import reverse

from registry.choices import InstanceState
from tests.conftest import assert_constant_queries
from tests.factories import InstanceFactory
from tests.policies.factories import PolicyFactory

pytestmark = pytest.mark.django_db


def test_policy_list_is_paginated_with_constant_queries(login, viewer, world):
    client = login(viewer)

    def make_rows(n):
        for _ in range(n):
            policy = PolicyFactory(tenant=world.tenant)
            InstanceFactory(version=world.root, environment=world.dev, provider=world.provider, policy=policy)

    def request():
        assert client.get(reverse("ui:policies"), {"page_size": 25}).status_code == 200

    assert_constant_queries(make_rows, request)
    html = client.get(reverse("ui:policies"), {"page_size": 25}).content.decode()
    table = html.split('data-testid="policy-table"', 1)[1].split("</table>", 1)[0]
    assert table.count('class="row-link"') == 25
    assert ">201<" in html.split('data-testid="result-count"', 1)[1][:20]  # 200 + the world's policy
    # Live instances per policy are counted for the page's rows: the world's policy has its one instance.
    first = client.get(reverse("ui:policies"), {"search": world.policy.name}).content.decode()
    assert '<td class="text-right tabular-nums">1</td>' in first


def test_policy_list_sorts_in_sql_across_pages(login, viewer, world):
    for name in ["zeta", "alpha", "mid"]:
        PolicyFactory(tenant=world.tenant, name=name)
    client = login(viewer)
    html = client.get(reverse("ui:policies"), {"page_size": 25, "ordering": "-name"}).content.decode()
    assert html.index(">zeta<") < html.index(">mid<") < html.index(">alpha<")


def test_policy_editor_lists_one_page_of_instances_with_constant_queries(login, compliance, world):
    client = login(compliance)
    url = reverse("ui:policy_edit", args=[world.policy.pk])
    other = PolicyFactory(tenant=world.tenant, name="other")

    def make_rows(n):
        for _ in range(n):
            InstanceFactory(version=world.root, environment=world.dev, provider=world.provider, policy=world.policy)
            InstanceFactory(version=world.root, environment=world.dev, provider=world.provider, policy=other)

    def request():
        assert client.get(url).status_code == 200

    assert_constant_queries(make_rows, request)
    html = client.get(url).content.decode()
    attach_form = html.split('data-testid="attach-form"', 1)[1].split("</form>", 1)[0]
    assert attach_form.count("<option value=") == 1 + 25  # the placeholder and one page
    assert "(now: other)" in attach_form
    second = client.get(url, {"attach_page": 2}).content.decode()
    assert 'data-testid="attach-form"' in second
    assert "Page 2 of" in second


def test_policy_editor_finds_attachable_instances_by_name(login, compliance, world):
    InstanceFactory(version=world.root, environment=world.dev, provider=world.provider, name="needle-7")
    InstanceFactory(version=world.root, environment=world.dev, provider=world.provider, name="hay-1")
    html = (
        login(compliance)
        .get(reverse("ui:policy_edit", args=[world.policy.pk]), {"attach_search": "needle"})
        .content.decode()
    )
    attach_form = html.split('data-testid="attach-form"', 1)[1].split("</form>", 1)[0]
    assert "needle-7" in attach_form and "hay-1" not in attach_form


def test_incidents_quarantined_list_is_paginated_with_constant_queries(login, viewer, world):
    client = login(viewer)

    def make_rows(n):
        InstanceFactory.create_batch(
            n,
            version=world.root,
            environment=world.dev,
            provider=world.provider,
            state=InstanceState.QUARANTINED,
        )

    def request():
        assert client.get(reverse("ui:incidents")).status_code == 200

    assert_constant_queries(make_rows, request)
    html = client.get(reverse("ui:incidents")).content.decode()
    table = html.split('data-testid="quarantined"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 1 + 25  # header and one page
    assert "quarantined_page=2" in html
