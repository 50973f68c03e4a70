"""Directory lists: the API's FilterSets drive search, filters and sort from the URL; lists run a
constant number of queries whatever their length; empty states say what to do."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from registry.choices import EvalStatus, InstanceState, VersionState
from tests.conftest import assert_constant_queries
from tests.factories import InstanceFactory, TemplateFactory, VersionFactory

pytestmark = pytest.mark.django_db


def rows(html: str, testid: str) -> int:
    return html.count(f'data-testid="{testid}"')


def test_versions_search_by_label_template_and_id(login, viewer, world):
    client = login(viewer)
    url = reverse("ui:directory_tab", args=["versions"])
    assert rows(client.get(url).content.decode(), "version-row") == 2
    assert rows(client.get(url, {"search": "1.1.0"}).content.decode(), "version-row") == 1
    assert rows(client.get(url, {"search": "support-bot"}).content.decode(), "version-row") == 2
    html = client.get(url, {"search": str(world.root.pk)}).content.decode()
    assert rows(html, "version-row") == 1 and str(world.root.pk)[:8] in html


def test_versions_filter_by_state_eval_tag_and_environment(login, viewer, world):
    client = login(viewer)
    url = reverse("ui:directory_tab", args=["versions"])
    assert rows(client.get(url, {"lifecycle_state": VersionState.APPROVED}).content.decode(), "version-row") == 1
    assert rows(client.get(url, {"eval_status": EvalStatus.PENDING}).content.decode(), "version-row") == 1
    assert rows(client.get(url, {"tags": "support"}).content.decode(), "version-row") == 2
    assert rows(client.get(url, {"tags": "nope"}).content.decode(), "version-row") == 0
    assert rows(client.get(url, {"environment": str(world.prod.pk)}).content.decode(), "version-row") == 1


def test_instances_filter_by_state_and_health(login, viewer, world):
    InstanceFactory(
        version=world.root,
        environment=world.dev,
        provider=world.provider,
        name="beating",
        state=InstanceState.ACTIVE,
        last_heartbeat_at=timezone.now(),
    )
    client = login(viewer)
    url = reverse("ui:directory_tab", args=["instances"])
    assert rows(client.get(url).content.decode(), "instance-row") == 2
    assert rows(client.get(url, {"health": "healthy"}).content.decode(), "instance-row") == 1
    assert rows(client.get(url, {"health": "never"}).content.decode(), "instance-row") == 1
    assert rows(client.get(url, {"state": InstanceState.PAUSED}).content.decode(), "instance-row") == 0


def test_sort_and_pagination_keep_the_filters_in_the_url(login, viewer, world):
    for n in range(30):
        VersionFactory(template=world.template, version_label=f"2.0.{n}")
    client = login(viewer)
    url = reverse("ui:directory_tab", args=["versions"])
    html = client.get(url, {"search": "2.0.", "page_size": 25, "ordering": "version_label"}).content.decode()
    assert rows(html, "version-row") == 25
    assert "page=2" in html and "search=2.0." in html and "ordering=version_label" in html
    first = html.index("@2.0.0<")
    assert first < html.index("@2.0.1<")
    second = client.get(url, {"search": "2.0.", "page_size": 25, "ordering": "version_label", "page": 2})
    assert rows(second.content.decode(), "version-row") == 5


def test_a_version_row_shows_its_template_parent_and_model_and_opens_its_drawer(login, viewer, world):
    child = VersionFactory(template=world.template, parent=world.root, version_label="3.0.0")
    html = login(viewer).get(reverse("ui:directory_tab", args=["versions"]), {"search": "3.0.0"}).content.decode()
    row = html.split('data-testid="version-row"', 1)[1].split("</tr>", 1)[0]
    assert f'hx-get="{reverse("ui:version_detail", args=[child.pk])}"' in row
    assert f"{world.template.name} <span" in row and "@3.0.0" in row
    assert f"@{world.root.version_label}</td>" in row  # the parent's label
    assert f">{child.genome['model_config']['name']}</td>" in row
    assert str(child.pk)[:8] in row


def test_the_directory_counts_its_rows_without_the_joins_a_row_adds(login, viewer, world):
    # The count runs over up to 10,001 rows; the template and parent a row shows are joined for the 50
    # rows of the page only.
    client = login(viewer)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("ui:directory_tab", args=["versions"])).status_code == 200
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"] and "registry_agentversion" in q["sql"]]
    rows_sql = [q["sql"] for q in ctx.captured_queries if "parent_label" in q["sql"]]
    assert len(counts) == 1 and "JOIN" not in counts[0]
    assert len(rows_sql) == 1 and "JOIN" in rows_sql[0]


def test_htmx_filter_request_returns_only_the_results_partial(login, viewer, world):
    response = login(viewer).get(
        reverse("ui:directory_tab", args=["versions"]),
        {"search": "1.0.0"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="directory-results",
    )
    html = response.content.decode()
    assert rows(html, "version-row") == 1
    assert "<html" not in html


def test_invalid_filter_values_do_not_500(login, viewer, world):
    client = login(viewer)
    response = client.get(
        reverse("ui:directory_tab", args=["versions"]), {"lifecycle_state": "BOGUS", "environment": "x"}
    )
    assert response.status_code == 200
    assert b"Some filters were not understood" in response.content


def test_empty_states_say_what_to_do(login, cast, tenant):
    html = login(cast["operator"]).get(reverse("ui:directory_tab", args=["templates"])).content.decode()
    assert "No templates yet" in html and "Create one, then add versions to it" in html
    html = login(cast["viewer"]).get(reverse("ui:directory_tab", args=["versions"])).content.decode()
    assert "No versions yet" in html and "Ask an operator" in html
    html = login(cast["viewer"]).get(reverse("ui:directory_tab", args=["versions"]), {"search": "zzz"}).content.decode()
    assert "Nothing matches these filters" in html


def test_global_search_shows_every_kind_on_one_page(login, viewer, world):
    client = login(viewer)
    html = client.get(reverse("ui:search"), {"q": "support"}).content.decode()
    templates = html.split('data-testid="search-templates"', 1)[1].split("</section>", 1)[0]
    versions = html.split('data-testid="search-versions"', 1)[1].split("</section>", 1)[0]
    instances = html.split('data-testid="search-instances"', 1)[1].split("</section>", 1)[0]
    assert world.template.name in templates
    assert "@1.0.0" in versions and "@1.1.0" in versions  # versions match on their template's name
    assert world.instance.name in instances
    for tab in ("templates", "versions", "instances"):
        assert f'href="{reverse("ui:directory_tab", args=[tab])}?search=support"' in html
    html = client.get(reverse("ui:search"), {"q": "1.1.0"}).content.decode()
    assert "No templates match." in html and "@1.1.0" in html


def test_global_search_shows_a_few_per_kind_with_constant_queries(login, viewer, world):

    client = login(viewer)

    def make_rows(n):
        for _ in range(n):
            template = TemplateFactory(tenant=world.tenant, name=f"needle-{uuid.uuid4().hex[:8]}")
            version = VersionFactory(template=template, parent=None)
            InstanceFactory(
                version=version, environment=world.dev, provider=world.provider, name=f"needle-inst-{version.pk}"
            )

    def request():
        response = client.get(reverse("ui:search"), {"q": "needle"})
        assert response.status_code == 200
        html = response.content.decode()
        assert html.count('data-testid="search-all-') == 3

    assert_constant_queries(make_rows, request, small=2, large=30)
    html = client.get(reverse("ui:search"), {"q": "needle"}).content.decode()
    assert html.split('data-testid="search-templates"', 1)[1].split("</section>", 1)[0].count("<li") == 5
    assert ">5+<" in html


def test_empty_global_search_goes_to_the_directory(login, viewer, world):
    response = login(viewer).get(reverse("ui:search"), {"q": "  "})
    assert response.status_code == 302 and response["Location"] == reverse("ui:directory_tab", args=["versions"])


@pytest.mark.parametrize("tab", ["templates", "versions", "instances"])
def test_directory_lists_run_a_constant_number_of_queries(login, viewer, world, tab):
    client = login(viewer)
    url = reverse("ui:directory_tab", args=[tab])

    def make_rows(n):
        for _ in range(n):
            template = TemplateFactory(tenant=world.tenant, tags=["support"])
            version = VersionFactory(template=template, parent=None)
            InstanceFactory(version=version, environment=world.dev, provider=world.provider, policy=world.policy)

    def request():
        response = client.get(url, {"page_size": 100, "tags": "support"})
        assert response.status_code == 200

    assert_constant_queries(make_rows, request, small=10, large=200)


def test_version_list_with_parents_runs_constant_queries(login, viewer, world):
    client = login(viewer)

    def make_rows(n):
        parent = world.root
        for _ in range(n):
            parent = VersionFactory(template=world.template, parent=parent)

    assert_constant_queries(
        make_rows, lambda: client.get(reverse("ui:directory_tab", args=["versions"])), small=10, large=200
    )


def test_global_search_encodes_the_query(login, viewer, world):
    html = login(viewer).get(reverse("ui:search"), {"q": "a&b=c #1"}).content.decode()
    assert "?search=a%26b%3Dc+%231" in html


def test_counts_stop_at_the_cap(login, viewer, world, monkeypatch):
    import arm.ui

    monkeypatch.setattr(arm.ui, "COUNT_CAP", 5)
    for n in range(8):
        VersionFactory(template=world.template, version_label=f"7.0.{n}")
    html = login(viewer).get(reverse("ui:directory_tab", args=["versions"]), {"page_size": 25}).content.decode()
    assert 'data-testid="result-count">5+<' in html
    assert rows(html, "version-row") == 6  # pages end at the cap (+1): nobody pages 200 pages deep


def test_templates_tab_shows_the_latest_version_label_with_its_date_on_hover(login, viewer, world):
    newest = VersionFactory(template=world.template, version_label="2.0.0-rc1")
    html = login(viewer).get(reverse("ui:directory_tab", args=["templates"])).content.decode()
    cell = html.split('data-testid="latest-version"', 1)[1].split("</td>", 1)[0]
    assert "@2.0.0-rc1" in cell
    assert f'title="created {timezone.localtime(newest.created_at):%Y-%m-%d %H:%M}"' in cell
