"""The New-instance form's version choice is a search (htmx, as you type) over a bounded page of versions,
never a <select> of the whole registry; another tenant's versions are never offered."""

import pytest
from django.urls import reverse

from registry.choices import VersionState
from registry.selectors import VERSION_CHOICES_LIMIT
from tests.conftest import assert_constant_queries
from tests.factories import TemplateFactory, VersionFactory

pytestmark = pytest.mark.django_db


def options(html: str) -> list[str]:
    return [chunk.split('"', 1)[0] for chunk in html.split('<option value="')[1:] if not chunk.startswith('"')]


def test_the_form_lists_one_bounded_page_with_constant_queries(login, operator, world):
    client = login(operator)

    def make_rows(n):
        for _ in range(n):
            VersionFactory(template=world.template)

    def request():
        response = client.get(reverse("ui:instance_create"))
        assert response.status_code == 200

    assert_constant_queries(make_rows, request, small=5, large=60)
    html = client.get(reverse("ui:instance_create")).content.decode()
    select = html.split('id="id_version"', 1)[1].split("</select>", 1)[0]
    assert len(options(select)) == VERSION_CHOICES_LIMIT
    assert "type to narrow" in select
    assert 'hx-get="/instances/new/versions/"' in html and 'hx-trigger="input changed delay:300ms, search"' in html


def test_search_as_you_type_narrows_and_keeps_the_choice(login, operator, world):
    needle = VersionFactory(template=TemplateFactory(tenant=world.tenant, name="needle-bot"), version_label="7.7.7")
    VersionFactory(template=world.template, lifecycle_state=VersionState.RETIRED, version_label="needle-retired")
    client = login(operator)
    url = reverse("ui:instance_version_options")
    html = client.get(url, {"version_search": "needle"}).content.decode()
    assert options(html) == [str(needle.pk)]
    # The chosen version stays offered (and selected) whatever is typed.
    html = client.get(url, {"version_search": "needle", "version": str(world.root.pk)}).content.decode()
    assert options(html) == [str(world.root.pk), str(needle.pk)]
    assert f'value="{world.root.pk}" selected' in html
    assert "No live version matches" in client.get(url, {"version_search": "zzz"}).content.decode()


def test_the_options_are_bounded_with_constant_queries(login, operator, world):
    client = login(operator)

    def make_rows(n):
        for _ in range(n):
            VersionFactory(template=world.template)

    def request():
        response = client.get(reverse("ui:instance_version_options"), {"version_search": "1.0"})
        assert response.status_code == 200
        assert len(options(response.content.decode())) <= VERSION_CHOICES_LIMIT

    assert_constant_queries(make_rows, request, small=5, large=60)


def test_another_tenants_versions_are_never_offered(login, operator, world, other_world):
    client = login(operator)
    url = reverse("ui:instance_version_options")
    html = client.get(url, {"version_search": "1.", "version": str(other_world.root.pk)}).content.decode()
    assert str(other_world.root.pk) not in html and str(other_world.child.pk) not in html
    html = client.get(url, {"version_search": str(other_world.root.pk)}).content.decode()
    assert options(html) == []


def test_only_operators_search_versions(login, viewer, world):
    assert login(viewer).get(reverse("ui:instance_version_options")).status_code == 403
