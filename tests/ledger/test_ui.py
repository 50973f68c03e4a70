"""The price page (/cost/prices/) and the budget alerts on the Incidents page."""

from datetime import date
from decimal import Decimal

import pytest
from django.test import Client

from audit.choices import EventType
from ledger.models import Price
from tests.conftest import assert_constant_queries, change_records
from tests.ledger.factories import BudgetFactory, PriceFactory, entry

PAGE = "/cost/prices/"


def _signed_in(member) -> Client:
    client = Client()
    client.force_login(member.user)
    return client


def test_viewer_sees_prices_of_the_tenant_only(viewer, tenant, other_tenant):
    PriceFactory(tenant=tenant, model="gpt-4.1")
    PriceFactory(tenant=other_tenant, model="globex-secret-model")
    page = _signed_in(viewer).get(PAGE)
    assert page.status_code == 200
    text = page.content.decode()
    assert "gpt-4.1" in text and "globex-secret-model" not in text
    assert 'data-testid="price-form"' not in text  # viewers read only
    assert _signed_in(viewer).post(PAGE, {}).status_code == 403


def test_empty_state_explains_unpriced_usage(viewer):
    text = _signed_in(viewer).get(PAGE).content.decode()
    assert 'data-testid="empty-state"' in text and "load_prices --tenant acme" in text


def test_compliance_adds_and_removes_a_price_with_change_records(compliance):
    client = _signed_in(compliance)
    form = {
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_usd_per_mtok": "3",
        "output_usd_per_mtok": "15",
        "effective_from": "2026-01-01",
    }
    assert client.post(PAGE, form).status_code == 302
    price = Price.objects.get()
    assert (price.input_usd_per_mtok, price.effective_from) == (Decimal("3"), date(2026, 1, 1))
    again = client.post(PAGE, form)
    assert again.status_code == 200 and "already has a price from this date" in again.content.decode()
    bad = client.post(PAGE, {**form, "input_usd_per_mtok": "-1", "effective_from": "2026-02-01"})
    assert 'data-testid="error-summary"' in bad.content.decode()
    assert client.post(f"{PAGE}{price.pk}/delete/").status_code == 302
    assert not Price.objects.exists()
    prices = [r.event_type for r in change_records() if r.target_type == "Price"]
    assert prices == [EventType.PRICE_CREATED, EventType.PRICE_DELETED]


def test_price_list_query_count_is_constant(viewer, tenant):
    client = _signed_in(viewer)
    counter = iter(range(10_000))
    assert_constant_queries(
        lambda n: [PriceFactory(tenant=tenant, model=f"m{next(counter)}") for _ in range(n)],
        lambda: client.get(PAGE),
    )


def test_cost_page_links_to_prices(viewer):
    assert 'href="/cost/prices/"' in _signed_in(viewer).get("/cost/").content.decode()


@pytest.mark.parametrize("with_alert", [False, True])
def test_incidents_page_shows_budget_alerts(viewer, tenant, instance, ingest, with_alert, other_tenant):
    BudgetFactory(tenant=other_tenant, name="globex-budget")
    if with_alert:
        BudgetFactory(tenant=tenant, name="Support monthly", amount_usd=Decimal("2"), thresholds=[80])
        from django.utils import timezone

        ingest([entry(instance, "spend", at=timezone.now().isoformat(), cost_usd="1.9")])
    text = _signed_in(viewer).get("/incidents/").content.decode()
    if with_alert:
        assert 'data-testid="budget-alerts"' in text and "Support monthly" in text and "80%" in text
        assert "$1.90 / $2.00" in text
    else:
        assert 'data-testid="budget-alerts-empty"' in text
    assert "globex-budget" not in text
