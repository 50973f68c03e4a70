"""GET /api/v1/usage/: the ledger's entries, newest first (cursor pagination), filtered, tenant-isolated,
and the Cost page's unpriced models with their "add a price" link."""

from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client

from tests.conftest import assert_constant_queries
from tests.factories import InstanceFactory, VersionFactory
from tests.helpers import assert_error, member_with
from tests.ledger.conftest import USAGE
from tests.ledger.factories import PriceFactory, entry


@pytest.fixture
def ledger(tenant, instance, ingest):
    """Five entries over two instances: priced, reported and unpriced, oldest first."""
    PriceFactory(tenant=tenant, provider="openai", model="gpt-4.1")
    second = InstanceFactory(version=VersionFactory(template=instance.version.template))
    ingest(
        [
            entry(instance, "a", at="2026-11-20T08:00:00Z"),
            entry(instance, "b", at="2026-11-20T09:00:00Z", provider="Anthropic", model="claude-x"),
            entry(second, "c", at="2026-11-20T10:00:00Z", cost_usd="0.25"),
            entry(second, "d", at="2026-11-20T11:00:00Z", model="gpt-9", cached_input_tokens=400),
            entry(instance, "e", at="2026-11-20T12:00:00Z"),
        ]
    )
    return instance, second


def _keys(response):
    assert response.status_code == 200, response.content
    return [row["idempotency_key"] for row in response.json()["results"]]


def test_entries_are_listed_newest_first_with_every_field(viewer, ledger):
    instance, second = ledger
    response = viewer.client.get(USAGE)
    assert _keys(response) == ["e", "d", "c", "b", "a"]
    row = response.json()["results"][1]
    assert row["instance"] == str(second.pk) and row["template"] == str(second.version.template_id)
    assert (row["model"], row["input_tokens"], row["cached_input_tokens"], row["output_tokens"]) == (
        "gpt-9",
        1000,
        400,
        500,
    )
    assert (row["cost_usd"], row["cost_source"], row["source"]) == ("0.000000", "unpriced", "api")


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("cost_source=unpriced", ["d", "b"]),
        ("cost_source=reported&cost_source=priced", ["e", "c", "a"]),
        ("provider=ANTHROPIC", ["b"]),
        ("model=gpt-4.1", ["e", "c", "a"]),
        ("since=2026-11-20T09:00:00Z&until=2026-11-20T11:00:00Z", ["c", "b"]),
        ("search=claude", ["b"]),
        ("source=otlp", []),
    ],
)
def test_filters(viewer, ledger, query, keys):
    assert _keys(viewer.client.get(f"{USAGE}?{query}")) == keys


def test_filter_by_instance(viewer, ledger):
    instance, second = ledger
    assert _keys(viewer.client.get(f"{USAGE}?instance={second.pk}")) == ["d", "c"]


def test_cursor_pages_walk_the_ledger_once(viewer, ledger):
    seen, url = [], f"{USAGE}?page_size=2"
    while url:
        response = viewer.client.get(url)
        seen += _keys(response)
        url = response.json()["next"]
        if url:
            url = f"{USAGE}?{urlparse(url).query}"
            assert "cursor" in parse_qs(urlparse(url).query)
    assert seen == ["e", "d", "c", "b", "a"]


def test_another_tenants_entries_never_show_and_their_ids_filter_nothing(tenant, other_tenant, ledger, other_instance):
    instance, _ = ledger
    theirs = member_with(other_tenant, ["operator"], "their-operator")
    response = theirs.client.post(USAGE, {"entries": [entry(other_instance, "theirs")]}, format="json")
    assert response.json()["accepted"] == 1
    assert _keys(theirs.client.get(USAGE)) == ["theirs"]
    assert _keys(theirs.client.get(f"{USAGE}?instance={instance.pk}")) == []


def test_runtime_keys_report_usage_but_do_not_read_the_ledger(tenant, instance, ledger):
    runtime = member_with(tenant, ["runtime"], "a-runtime")
    assert_error(runtime.client.get(USAGE), 403, "role_required")


def test_a_bad_filter_is_a_400(viewer, ledger):
    assert_error(viewer.client.get(f"{USAGE}?since=yesterday"), 400, "validation_error")
    assert_error(viewer.client.get(f"{USAGE}?cost_source=free"), 400, "validation_error")


def test_the_list_runs_a_constant_number_of_queries(tenant, viewer, instance, ingest):
    made = []

    def grow(n):
        ingest([entry(instance, f"q{len(made) + i}") for i in range(n)])
        made.extend(range(n))

    def listing():
        response = viewer.client.get(f"{USAGE}?page_size=1000")
        assert response.status_code == 200 and len(response.json()["results"]) == len(made)

    assert_constant_queries(grow, listing)


# ---------------------------------------------------------------- the Cost page


def _page(member, url="/cost/"):
    client = Client()
    client.force_login(member.user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def _unpriced_panel(page: str) -> str:
    start = page.index('data-testid="unpriced"')
    return page[start : page.index("</section>", start)]


def test_the_cost_page_lists_unpriced_models_with_an_add_a_price_link(compliance, viewer, ledger):
    page = _unpriced_panel(_page(compliance))
    assert 'data-testid="unpriced"' in page
    assert "claude-x" in page and "gpt-9" in page
    link = "/cost/prices/?provider=anthropic&amp;model=claude-x&amp;effective_from=2026-11-20#price-form"
    assert link in page
    # who may not add prices sees the list, not the link
    viewer_page = _unpriced_panel(_page(viewer))
    assert "claude-x" in viewer_page and 'data-testid="add-price"' not in viewer_page


def test_the_link_opens_the_price_form_prefilled_and_adding_the_price_prices_the_entries(compliance, ledger):
    page = _page(compliance, "/cost/prices/?provider=anthropic&model=claude-x&effective_from=2026-11-20")
    assert 'value="anthropic"' in page and 'value="claude-x"' in page and 'value="2026-11-20"' in page
    client = Client()
    client.force_login(compliance.user)
    form = {
        "provider": "anthropic",
        "model": "claude-x",
        "effective_from": "2026-11-20",
        "input_usd_per_mtok": "3",
        "cached_input_usd_per_mtok": "0.3",
        "output_usd_per_mtok": "15",
    }
    response = client.post("/cost/prices/", form, follow=True)
    assert "1 unpriced entries priced at it (0.010500 USD)" in response.content.decode()
    panel = _unpriced_panel(_page(compliance))
    assert "claude-x" not in panel and "gpt-9" in panel


def test_no_unpriced_panel_when_everything_is_priced(tenant, compliance, instance, ingest):
    PriceFactory(tenant=tenant, provider="openai", model="gpt-4.1")
    ingest([entry(instance, "a")])
    assert 'data-testid="unpriced"' not in _page(compliance)
