"""Usage intake fidelity through the usage API (issue 24): cached input tokens at their own price,
providers matched ignoring case, unpriced usage said in the answer and priced when its price arrives."""

import json
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum

from audit.choices import EventType
from ledger.models import DailyRollup, InstanceSpanRollup, Price, TemplateDayRollup, UsageEntry
from policies.models import InstanceSpend
from tests.conftest import change_records
from tests.factories import InstanceFactory, TemplateFactory, VersionFactory
from tests.helpers import member_with
from tests.ledger.factories import BudgetFactory, PriceFactory, entry

PRICES = "/api/v1/prices/"
GPT_9 = {
    "provider": "openai",
    "model": "gpt-9",
    "input_usd_per_mtok": "2",
    "output_usd_per_mtok": "8",
    "effective_from": "2025-01-01",
}


def _price(tenant, **overrides):
    fields = {
        "provider": "openai",
        "model": "gpt-4.1",
        "input_usd_per_mtok": Decimal("2"),
        "cached_input_usd_per_mtok": Decimal("0.5"),
        "output_usd_per_mtok": Decimal("8"),
    }
    return PriceFactory(tenant=tenant, **{**fields, **overrides})


def _result(response, index=0):
    assert response.status_code == 200, response.content
    return response.json()["results"][index]


# ---------------------------------------------------------------- cached input tokens


def test_cached_input_tokens_are_priced_at_the_cached_price(tenant, instance, ingest):
    _price(tenant)
    body = entry(instance, "k1", input_tokens=10_000, cached_input_tokens=8_000, output_tokens=500)
    result = _result(ingest([body]))
    # 2,000 fresh × $2 + 8,000 cached × $0.50 + 500 × $8 per million = 0.004 + 0.004 + 0.004
    assert (result["result"], result["cost_usd"], result["cost_source"]) == ("accepted", "0.012000", "priced")
    stored = UsageEntry.objects.get()
    assert (stored.input_tokens, stored.cached_input_tokens) == (10_000, 8_000)


def test_without_a_cached_price_cached_tokens_cost_the_input_price(tenant, instance, ingest):
    _price(tenant, cached_input_usd_per_mtok=None)
    body = entry(instance, "k1", input_tokens=10_000, cached_input_tokens=8_000, output_tokens=500)
    assert _result(ingest([body]))["cost_usd"] == "0.024000"


@pytest.mark.parametrize(
    ("cached", "message"),
    [(1001, "more than input_tokens"), (-1, "whole number"), ("5", "whole number"), (True, "whole number")],
)
def test_cached_input_tokens_must_be_a_part_of_the_input_tokens(tenant, instance, ingest, cached, message):
    good = entry(instance, "ok", cached_input_tokens=1000)  # input_tokens 1000: all of them cached is fine
    bad = entry(instance, "bad", cached_input_tokens=cached)
    response = ingest([good, bad])
    ok, refused = response.json()["results"]
    assert ok["result"] == "accepted"
    assert (refused["result"], refused["code"]) == ("rejected", "validation_error")
    assert refused["field"] == "cached_input_tokens"
    assert message in refused["message"]
    assert UsageEntry.objects.count() == 1


def test_a_replay_with_other_cached_tokens_is_a_conflict(tenant, instance, ingest):
    assert _result(ingest([entry(instance, "k1", cached_input_tokens=100)]))["result"] == "accepted"
    assert _result(ingest([entry(instance, "k1", cached_input_tokens=100)]))["result"] == "duplicate"
    again = _result(ingest([entry(instance, "k1", cached_input_tokens=200)]))
    assert again["result"] == "conflict" and "cached_input_tokens" in again["message"]


# ---------------------------------------------------------------- providers ignoring case


def test_a_capitalised_provider_is_stored_lowercase_and_priced(tenant, instance, ingest):
    _price(tenant, provider="anthropic", model="claude-sonnet-4-5")
    body = entry(instance, "k1", provider="Anthropic", model="claude-sonnet-4-5")
    assert _result(ingest([body]))["cost_source"] == "priced"
    assert UsageEntry.objects.get().provider == "anthropic"


def test_prices_store_their_provider_lowercase(tenant, compliance):
    body = {
        "provider": "OpenAI",
        "model": "gpt-4.1",
        "input_usd_per_mtok": "2.00",
        "output_usd_per_mtok": "8.00",
        "effective_from": "2025-01-01",
    }
    response = compliance.client.post(PRICES, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["provider"] == "openai" and response.json()["cached_input_usd_per_mtok"] is None
    again = compliance.client.post(PRICES, {**body, "provider": "openai"}, format="json")
    assert again.status_code == 409  # the same row: providers differ only in case


# ---------------------------------------------------------------- unpriced usage


def test_unpriced_entries_are_kept_and_counted_in_the_answer(tenant, instance, ingest):
    _price(tenant)
    response = ingest(
        [
            entry(instance, "a", model="gpt-9"),
            entry(instance, "b", model="gpt-9"),
            entry(instance, "c", provider="Acme", model="rocket-1"),
            entry(instance, "d"),  # priced
            entry(instance, "e", model="gpt-9", cost_usd="0.5"),  # reported: not unpriced
        ]
    ).json()
    assert response["accepted"] == 5
    assert response["unpriced"] == 3
    assert response["unpriced_models"] == [
        {"provider": "acme", "model": "rocket-1", "entries": 1},
        {"provider": "openai", "model": "gpt-9", "entries": 2},
    ]
    assert [r["cost_source"] for r in response["results"]] == ["unpriced"] * 3 + ["priced", "reported"]
    [record] = change_records(event_type=EventType.USAGE_INGESTED)
    assert record.payload["unpriced"] == 3


def _sums(model, **filters):
    return model.objects.filter(**filters).aggregate(cost=Sum("cost_usd"), n=Sum("entries"))


def _assert_rollups_match_entries(tenant):
    entries = UsageEntry.objects.filter(tenant=tenant).aggregate(cost=Sum("cost_usd"))["cost"]
    assert _sums(DailyRollup, tenant=tenant)["cost"] == entries
    assert _sums(TemplateDayRollup, tenant=tenant)["cost"] == entries
    for level in range(8):
        assert _sums(InstanceSpanRollup, tenant=tenant, level=level)["cost"] == entries
    assert _sums(DailyRollup, tenant=tenant)["n"] == UsageEntry.objects.filter(tenant=tenant).count()


def test_a_new_price_prices_the_unpriced_entries_of_its_model(tenant, instance, ingest, compliance):
    other = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=tenant)))
    ingest(
        [
            entry(instance, "before", model="gpt-9", at="2026-10-31T23:00:00Z"),  # before the price's date
            entry(instance, "a", model="gpt-9", at="2026-11-01T09:00:00Z", cached_input_tokens=800),
            entry(other, "b", provider="OpenAI", model="gpt-9-2026-11-01", at="2026-11-20T10:00:00Z"),
            entry(instance, "reported", model="gpt-9", cost_usd="1.5"),
            entry(instance, "other-model", model="gpt-9-mini"),
        ]
    )
    assert UsageEntry.objects.filter(cost_source="unpriced").count() == 4
    body = {
        "provider": "openai",
        "model": "gpt-9",
        "input_usd_per_mtok": "2",
        "cached_input_usd_per_mtok": "0.5",
        "output_usd_per_mtok": "8",
        "effective_from": "2026-11-01",
    }
    assert compliance.client.post(PRICES, body, format="json").status_code == 201

    costs = dict(UsageEntry.objects.values_list("idempotency_key", "cost_usd"))
    sources = dict(UsageEntry.objects.values_list("idempotency_key", "cost_source"))
    # 200 × $2 + 800 × $0.50 + 500 × $8 per million; a dated release without its own price: the base's
    assert (costs["a"], sources["a"]) == (Decimal("0.0048"), "priced")
    assert (costs["b"], sources["b"]) == (Decimal("0.006"), "priced")
    assert (costs["before"], sources["before"]) == (0, "unpriced")
    assert (costs["reported"], sources["reported"]) == (Decimal("1.5"), "reported")
    assert sources["other-model"] == "unpriced"
    _assert_rollups_match_entries(tenant)
    spend = InstanceSpend.objects.get(instance=other, period="day", period_start=date(2026, 11, 20))
    assert spend.actual_usd == Decimal("0.006")
    [record] = change_records(event_type=EventType.PRICE_CREATED)
    assert record.payload["repriced"] == {"entries": 2, "cost_usd": "0.010800"}


def test_a_changed_price_prices_what_it_now_covers_and_keeps_priced_costs(tenant, instance, ingest, compliance):
    price = _price(tenant, model="gpt-9", effective_from=date(2026, 11, 15))
    ingest([entry(instance, "early", model="gpt-9", at="2026-11-10T10:00:00Z"), entry(instance, "late", model="gpt-9")])
    assert dict(UsageEntry.objects.values_list("idempotency_key", "cost_source")) == {
        "early": "unpriced",
        "late": "priced",
    }
    changes = {"effective_from": "2026-11-01", "input_usd_per_mtok": "4"}
    assert compliance.client.patch(f"{PRICES}{price.pk}/", changes, format="json").status_code == 200
    costs = dict(UsageEntry.objects.values_list("idempotency_key", "cost_usd"))
    assert costs["early"] == Decimal("0.008")  # 1000 × $4 + 500 × $8 per million, at the changed row
    assert costs["late"] == Decimal("0.006")  # priced at ingestion: kept
    _assert_rollups_match_entries(tenant)
    [record] = change_records(event_type=EventType.PRICE_CHANGED)
    assert record.payload["repriced"]["entries"] == 1


def test_repricing_is_the_tenants_own(tenant, instance, other_instance, other_tenant, ingest, compliance):
    theirs = member_with(other_tenant, ["operator"], "their-operator")
    assert ingest([entry(other_instance, "theirs", model="gpt-9")], client=theirs.client).json()["unpriced"] == 1
    ingest([entry(instance, "ours", model="gpt-9")])
    assert compliance.client.post(PRICES, GPT_9, format="json").status_code == 201
    assert UsageEntry.objects.get(idempotency_key="ours").cost_source == "priced"
    assert UsageEntry.objects.get(idempotency_key="theirs").cost_source == "unpriced"


def test_repricing_crosses_budget_thresholds(tenant, instance, ingest, compliance):
    BudgetFactory(tenant=tenant, amount_usd=Decimal("1"), thresholds=[50], period="monthly")
    ingest([entry(instance, f"k{i}", model="gpt-9", input_tokens=100_000, output_tokens=0) for i in range(3)])
    assert not change_records(event_type=EventType.BUDGET_THRESHOLD_CROSSED)
    assert compliance.client.post(PRICES, GPT_9, format="json").status_code == 201
    [crossed] = change_records(event_type=EventType.BUDGET_THRESHOLD_CROSSED)
    assert crossed.payload["threshold"] == 50 and crossed.payload["spend_usd"] == "0.600000"


def test_a_retry_after_repricing_is_still_a_duplicate(instance, ingest, compliance):
    ingest([entry(instance, "k1", model="gpt-9")])
    assert compliance.client.post(PRICES, GPT_9, format="json").status_code == 201
    assert UsageEntry.objects.get().cost_source == "priced"
    assert _result(ingest([entry(instance, "k1", model="gpt-9")]))["result"] == "duplicate"


# ---------------------------------------------------------------- the shipped prices


def test_the_shipped_prices_carry_a_cached_price_and_say_where_it_comes_from(tenant):
    shipped = json.loads(open("fixtures/prices.json").read())
    for row in shipped:
        assert Decimal(row["cached_input_usd_per_mtok"]) < Decimal(row["input_usd_per_mtok"]), row
        assert row["note"], row
    call_command("load_prices", "--tenant", tenant.slug)
    loaded = {p.model: p for p in Price.objects.filter(tenant=tenant)}
    assert loaded["claude-sonnet-4-5"].cached_input_usd_per_mtok == Decimal("0.3")
    assert loaded["gpt-4o"].cached_input_usd_per_mtok == Decimal("1.25")


def test_a_price_file_without_cached_prices_leaves_them_alone(tenant, tmp_path):
    _price(tenant, model="gpt-4.1", effective_from=date(2025, 1, 1))
    row = {
        "provider": "openai",
        "model": "gpt-4.1",
        "input_usd_per_mtok": "2",
        "output_usd_per_mtok": "8",
        "effective_from": "2025-01-01",
    }
    path = tmp_path / "prices.json"
    path.write_text(json.dumps([row]))
    call_command("load_prices", "--tenant", tenant.slug, "--file", str(path))
    assert Price.objects.get().cached_input_usd_per_mtok == Decimal("0.5")
    path.write_text(json.dumps([{**row, "cached_input_usd_per_mtok": "0.25", "note": "half price"}]))
    call_command("load_prices", "--tenant", tenant.slug, "--file", str(path))
    assert Price.objects.get().cached_input_usd_per_mtok == Decimal("0.25")
