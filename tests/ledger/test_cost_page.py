"""The Cost page (ledger.views.cost): charts with their number tables and drill-down links over
ingested usage, the empty state, filters (bad ones reported, defaults used), the instance list sorted
and paginated in SQL, budget cards with their forecast, and a query count that does not grow."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from ledger.views import MAX_BURNDOWNS
from tests.conftest import assert_constant_queries
from tests.factories import EnvironmentFactory, InstanceFactory, TemplateFactory, VersionFactory
from tests.ledger.factories import BudgetFactory
from tests.ledger.test_cost_reports import TODAY, ingest

pytestmark = pytest.mark.django_db
D = Decimal
COST = reverse("ui:cost")


@pytest.fixture
def page(viewer):
    client = Client()
    client.force_login(viewer.user)
    return lambda params=None: client.get(COST, params or {})


@pytest.fixture
def usage(tenant):
    env = EnvironmentFactory(tenant=tenant, name="prod", tier="prod")
    support = TemplateFactory(tenant=tenant, name="support-bot", tags=["cs"])
    sales = TemplateFactory(tenant=tenant, name="sales-bot")
    a = InstanceFactory(version=VersionFactory(template=support), environment=env, name="support-1")
    b = InstanceFactory(version=VersionFactory(template=sales), name="sales-1")
    ingest(
        tenant,
        [(a, TODAY - timedelta(days=d), "gpt-4.1", D("12.5")) for d in range(1, 5)]
        + [(b, TODAY - timedelta(days=2), "claude-sonnet-4", D("3.25"))],
    )
    return {"support": support, "sales": sales, "a": a, "b": b, "env": env}


def test_charts_tables_and_drill_down_links(page, usage):
    response = page()
    assert response.status_code == 200
    html = response.content.decode()
    for testid in ("chart-spend", "spend-legend", "spend-table", "chart-agents", "chart-models", "chart-estimates"):
        assert f'data-testid="{testid}"' in html, testid
    assert "$53.25" in html  # in range: 4 × 12.50 + 3.25, as the usd filter writes it
    assert "$50" in html  # support-1 on the agents chart
    assert f'href="{reverse("ui:instance_detail", args=[usage["a"].pk])}"' in html
    assert f"template={usage['support'].pk}" in html  # a template's bars filter the page by it
    assert "gpt-4.1" in html and "claude-sonnet-4" in html
    assert "style=" not in html.split("<main", 1)[-1]  # the strict CSP: no inline style in the content
    assert 'data-testid="cost-empty"' not in html


def test_without_usage_the_page_says_how_to_send_it(page, tenant):
    html = page().content.decode()
    assert 'data-testid="cost-empty"' in html
    assert "/api/v1/usage/" in html and "/otlp/v1/traces" in html and "docs/runtime-integration.md" in html
    assert 'data-testid="chart-spend"' not in html


def test_bad_filters_are_reported_and_the_defaults_used(page, usage):
    response = page({"since": "last tuesday", "environment": "nope", "period": "year"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="cost-errors"' in html
    for name in ("since", "environment", "period"):
        assert f">{name}</span>" in html
    assert response.context["query"].period == "day"
    assert response.context["query"].since == TODAY - timedelta(days=29)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"until": "0001-01-01"}, "until"),
        ({"since": "9999-12-31"}, "since"),
        ({"until": "9999-12-31", "period": "month"}, "until"),
        ({"since": "9999-12-01", "until": "9999-12-31", "period": "week"}, "since"),
    ],
)
def test_dates_out_of_range_are_reported_not_a_500(page, usage, params, field):
    response = page(params)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="cost-errors"' in html and f">{field}</span>" in html
    assert "A date from 2000-01-01 to 9998-12-31" in html
    assert response.context["query"].since == TODAY - timedelta(days=29)


def test_dates_at_the_edges_are_shown(page, usage):
    response = page({"since": "9998-12-31", "period": "month"})
    assert response.status_code == 200 and 'data-testid="cost-errors"' not in response.content.decode()
    assert response.context["query"].until == date(9999, 1, 29)


def test_filters_narrow_every_section(page, usage):
    response = page({"environment": str(usage["env"].pk)})
    html = response.content.decode()
    assert [r["instance"].name for r in response.context["rows"]] == ["support-1"]
    assert "claude-sonnet-4" not in html and response.context["spend"]["report"].total_usd == D(50)
    week = page({"period": "week", "template": str(usage["sales"].pk)})
    assert week.context["query"].period == "week"
    assert week.context["spend"]["report"].total_usd == D("3.25")


def test_instances_are_sorted_and_paginated_in_sql(page, tenant, usage):
    template = TemplateFactory(tenant=tenant)
    for i in range(27):
        InstanceFactory(version=VersionFactory(template=template), name=f"idle-{i:02d}")
    first = page({"sort": "range", "page_size": "25"})
    rows = first.context["rows"]
    assert len(rows) == 25 and [r["instance"].name for r in rows[:2]] == ["support-1", "sales-1"]
    assert rows[0]["range_actual"] == D(50)
    second = page({"sort": "range", "page_size": "25", "page": "2"})
    assert len(second.context["rows"]) == 4
    names = [r["instance"].name for r in page({"sort": "name"}).context["rows"]]
    assert names == sorted(names)


def test_budget_cards_show_spend_forecast_and_runout(page, tenant, usage):
    BudgetFactory(tenant=tenant, name="tight", amount_usd=D("40"), period="monthly")
    BudgetFactory(tenant=tenant, name="loose", amount_usd=D("100000"), scope="tag", tag="cs")
    response = page()
    cards = {b["budget"].name: b for b in response.context["budgets"]["items"]}
    month_start = TODAY.replace(day=1)
    spent = sum((D("12.5") for d in range(1, 5) if TODAY - timedelta(days=d) >= month_start), D(0))
    spent += D("3.25") if TODAY - timedelta(days=2) >= month_start else D(0)
    assert cards["tight"]["f"].spent == spent
    assert cards["loose"]["f"].runout_on is None
    html = response.content.decode()
    assert 'data-testid="chart-burndown"' in html and "Forecast for the period" in html
    if spent >= 40:
        assert "Exhausted on" in html
    else:
        assert "Runs out on" in html


def test_query_count_does_not_grow_with_instances_usage_or_budgets(page, tenant):
    template = TemplateFactory(tenant=tenant, tags=["a"])
    state = {"n": 0}

    def make_rows(n):
        rows = []
        for _ in range(n):
            state["n"] += 1
            instance = InstanceFactory(version=VersionFactory(template=template), name=f"i-{state['n']:03d}")
            rows += [(instance, TODAY - timedelta(days=d), "gpt-4.1", D("2")) for d in range(2)]
            BudgetFactory(tenant=tenant, name=f"b-{state['n']:03d}", amount_usd=D(1000))
        ingest(tenant, rows)

    # burn-downs are capped at MAX_BURNDOWNS (one query each): start past the cap, then grow tenfold
    assert MAX_BURNDOWNS < 7
    assert_constant_queries(make_rows, page, small=7, large=40)
