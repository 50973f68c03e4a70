"""Prices: effective-date resolution, the API (CRUD, roles, change records, conflicts), the shipped list
and ``load_prices``."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from audit.choices import EventType
from ledger.models import Price
from ledger.pricing import price_in_effect
from tests.conftest import change_records
from tests.helpers import assert_error
from tests.ledger.factories import PriceFactory, entry

PRICES = "/api/v1/prices/"


def test_price_in_effect_is_the_latest_row_on_or_before_the_utc_day(tenant):
    old = PriceFactory(tenant=tenant, model="m", effective_from=date(2026, 1, 1))
    new = PriceFactory(tenant=tenant, model="m", effective_from=date(2026, 6, 1), input_usd_per_mtok=Decimal("1"))
    at = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    assert price_in_effect(tenant=tenant, provider="openai", model="m", at=at(2025, 12, 31, 23, 59)) is None
    assert price_in_effect(tenant=tenant, provider="openai", model="m", at=at(2026, 1, 1)) == old
    assert price_in_effect(tenant=tenant, provider="openai", model="m", at=at(2026, 5, 31, 23, 59, 59)) == old
    assert price_in_effect(tenant=tenant, provider="openai", model="m", at=at(2026, 6, 1)) == new
    assert price_in_effect(tenant=tenant, provider="anthropic", model="m", at=at(2026, 7, 1)) is None


def test_entries_are_priced_at_the_price_of_their_day(tenant, instance, ingest):
    PriceFactory(tenant=tenant, model="gpt-4.1", effective_from=date(2026, 11, 1))  # 2 / 8
    PriceFactory(tenant=tenant, model="gpt-4.1", effective_from=date(2026, 11, 15), input_usd_per_mtok=Decimal("1"))
    data = ingest(
        [
            entry(instance, "before", at="2026-10-31T23:00:00Z"),
            entry(instance, "first", at="2026-11-14T23:59:59Z"),
            entry(instance, "second", at="2026-11-15T00:00:00Z"),
            entry(instance, "dated", at="2026-11-15T00:00:00Z", model="gpt-4.1-2025-04-14"),
            entry(instance, "other-model", at="2026-11-15T00:00:00Z", model="gpt-4.1-mini"),
        ]
    ).json()
    costs = {r["idempotency_key"]: (r["cost_usd"], r["cost_source"]) for r in data["results"]}
    assert costs == {
        "before": ("0.000000", "unpriced"),
        "first": ("0.006000", "priced"),  # 1000 × 2 + 500 × 8 per million
        "second": ("0.005000", "priced"),  # 1000 × 1 + 500 × 8 per million
        "dated": ("0.005000", "priced"),  # a dated release is priced as its base model
        "other-model": ("0.000000", "unpriced"),  # gpt-4.1-mini is another model, not a release
    }


def test_price_api_crud_with_change_records(compliance, viewer, tenant):
    body = {
        "provider": "openai",
        "model": "gpt-4.1",
        "input_usd_per_mtok": "2.00",
        "output_usd_per_mtok": "8.00",
        "effective_from": "2026-01-01",
    }
    created = compliance.client.post(PRICES, body, format="json")
    assert created.status_code == 201, created.content
    price_id = created.json()["id"]
    assert created.json()["created_by"] == compliance.actor.ref
    assert_error(compliance.client.post(PRICES, body, format="json"), 409, "conflict", contains=["effective_from"])
    assert_error(
        viewer.client.post(PRICES, {**body, "effective_from": "2026-02-01"}, format="json"), 403, "role_required"
    )
    assert viewer.client.get(PRICES).json()["count"] == 1
    changed = compliance.client.patch(f"{PRICES}{price_id}/", {"output_usd_per_mtok": "9.50"}, format="json")
    assert changed.json()["output_usd_per_mtok"] == "9.500000"
    assert compliance.client.delete(f"{PRICES}{price_id}/").status_code == 204
    events = [r.event_type for r in change_records() if r.target_id == price_id]
    assert events == [EventType.PRICE_CREATED, EventType.PRICE_CHANGED, EventType.PRICE_DELETED]
    update = next(r for r in change_records(event_type=EventType.PRICE_CHANGED))
    assert update.payload["changes"] == {"output_usd_per_mtok": {"before": "8.000000", "after": "9.500000"}}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"input_usd_per_mtok": "-1"}, "input_usd_per_mtok"),
        ({"input_usd_per_mtok": 2}, "input_usd_per_mtok"),
        ({"effective_from": "yesterday"}, "effective_from"),
        ({"model": ""}, "model"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_price_api_refuses_bad_input_by_field(compliance, change, field):
    body = {
        "provider": "openai",
        "model": "gpt-4.1",
        "input_usd_per_mtok": "2.00",
        "output_usd_per_mtok": "8.00",
        "effective_from": "2026-01-01",
        **change,
    }
    assert_error(compliance.client.post(PRICES, body, format="json"), 400, "validation_error", contains=[field])
    assert Price.objects.count() == 0


def test_load_prices_loads_the_shipped_list_idempotently(tenant, capsys):
    call_command("load_prices", "--tenant", tenant.slug)
    shipped = json.loads(open("fixtures/prices.json").read())
    assert Price.objects.filter(tenant=tenant).count() == len(shipped) >= 12
    assert {p.provider for p in Price.objects.all()} == {"openai", "anthropic", "gcp.gemini"}
    assert len(change_records(event_type=EventType.PRICE_CREATED)) == len(shipped)
    call_command("load_prices", "--tenant", tenant.slug)
    assert "0 created, 0 updated" in capsys.readouterr().out
    assert len(change_records(event_type=EventType.PRICE_CREATED)) == len(shipped)


def test_load_prices_updates_changed_rows_and_reports_bad_files(tenant, tmp_path):
    PriceFactory(tenant=tenant, provider="openai", model="gpt-4.1", effective_from=date(2025, 1, 1))
    path = tmp_path / "prices.json"
    row = {
        "provider": "openai",
        "model": "gpt-4.1",
        "input_usd_per_mtok": "3",
        "output_usd_per_mtok": "8",
        "effective_from": "2025-01-01",
    }
    path.write_text(json.dumps([row]))
    call_command("load_prices", "--tenant", tenant.slug, "--file", str(path))
    assert Price.objects.get().input_usd_per_mtok == Decimal("3")
    path.write_text(json.dumps([{**row, "effective_from": "soon"}]))
    with pytest.raises(CommandError, match="effective_from"):
        call_command("load_prices", "--tenant", tenant.slug, "--file", str(path))
    with pytest.raises(CommandError, match="No tenant"):
        call_command("load_prices", "--tenant", "nobody")
