"""POST /api/v1/usage/: per-entry results, idempotent retries, pricing, rollups and spend counters."""

from datetime import date
from decimal import Decimal

import pytest
from django.db.models import Sum
from rest_framework.test import APIClient

from audit.choices import EventType
from ledger.ingest import MAX_ENTRIES_PER_BATCH
from ledger.models import DailyRollup, UsageEntry
from policies.models import InstanceSpend
from tests.conftest import change_records
from tests.factories import InstanceFactory, VersionFactory, make_api_key
from tests.helpers import assert_error
from tests.ledger.conftest import USAGE
from tests.ledger.factories import PriceFactory, entry


def test_batch_is_stored_priced_and_recorded_once(tenant, instance, ingest):
    PriceFactory(tenant=tenant, provider="openai", model="gpt-4.1")  # $2 in, $8 out per Mtok
    response = ingest([entry(instance, "k1"), entry(instance, "k2", cost_usd="0.5"), entry(instance, "k3", model="x")])
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["accepted"], data["duplicates"], data["rejected"]) == (3, 0, 0)
    by_key = {r["idempotency_key"]: r for r in data["results"]}
    assert by_key["k1"]["cost_usd"] == "0.006000" and by_key["k1"]["cost_source"] == "priced"
    assert by_key["k2"]["cost_usd"] == "0.500000" and by_key["k2"]["cost_source"] == "reported"
    assert by_key["k3"]["cost_usd"] == "0.000000" and by_key["k3"]["cost_source"] == "unpriced"
    stored = UsageEntry.objects.get(idempotency_key="k1")
    assert stored.template_id == instance.version.template_id
    assert stored.environment_id == instance.environment_id
    assert stored.source == "api"
    [record] = change_records(event_type=EventType.USAGE_INGESTED)
    assert record.payload["accepted"] == 3 and record.payload["cost_usd"] == "0.506000"


def test_retried_batch_counts_nothing_twice(tenant, instance, ingest):
    batch = [entry(instance, f"k{i}", cost_usd="1") for i in range(5)]
    assert ingest(batch).json()["accepted"] == 5
    retry = ingest([*batch, entry(instance, "k5", cost_usd="1")]).json()
    assert (retry["accepted"], retry["duplicates"]) == (1, 5)
    assert [r["result"] for r in retry["results"]] == ["duplicate"] * 5 + ["accepted"]
    assert UsageEntry.objects.count() == 6
    rollup = DailyRollup.objects.get()
    assert (rollup.entries, rollup.cost_usd) == (6, Decimal("6"))
    day = InstanceSpend.objects.get(instance=instance, period="day", period_start=date(2026, 11, 20))
    assert day.actual_usd == Decimal("6") and day.amount_usd == 0
    assert len(change_records(event_type=EventType.USAGE_INGESTED)) == 2


def test_same_key_twice_in_one_batch_is_a_duplicate(instance, ingest):
    data = ingest([entry(instance, "same"), entry(instance, "same")]).json()
    assert [r["result"] for r in data["results"]] == ["accepted", "duplicate"]
    assert UsageEntry.objects.count() == 1


def test_bad_entries_are_refused_by_name_and_the_rest_kept(instance, other_instance, ingest):
    batch = [
        entry(instance, "good"),
        entry(instance, "unknown-field", colour="red"),
        entry(other_instance, "elsewhere"),
        entry(instance, "naive", at="2026-11-20T10:00:00"),
        entry(instance, "negative", input_tokens=-1),
        entry(instance, "future", at="2999-01-01T00:00:00Z"),
        "not an object",
        entry(instance, "bad-decision", decision="7d4a0a8e-53b3-4c3e-9d7a-2f1c8f1f0a11"),
        entry(instance, "bool", output_tokens=True),
    ]
    data = ingest(batch).json()
    assert (data["accepted"], data["rejected"]) == (1, 8)
    results = data["results"]
    assert results[0]["result"] == "accepted"
    assert results[1]["code"] == "validation_error" and results[1]["field"] == "colour"
    assert "Unknown field: colour" in results[1]["message"]
    assert results[2]["code"] == "instance_not_found"
    assert results[3]["field"] == "occurred_at" and "time zone" in results[3]["message"]
    assert results[4]["field"] == "input_tokens"
    assert results[5]["message"] == "occurred_at is in the future."
    assert results[6]["message"] == "Each entry must be a JSON object."
    assert results[7]["code"] == "decision_not_found"
    assert results[8]["field"] == "output_tokens"
    assert [e.idempotency_key for e in UsageEntry.objects.all()] == ["good"]


def test_a_priced_cost_beyond_the_entry_limit_is_refused(tenant, instance, ingest):
    """Tokens x price can exceed what one entry may cost (and the column holds): that entry is refused
    like a reported cost beyond the limit, the rest of the batch kept."""
    PriceFactory(tenant=tenant, provider="openai", model="gpt-4.1", input_usd_per_mtok=Decimal("999"))  # $8 out
    data = ingest([entry(instance, "huge", input_tokens=10**9, output_tokens=10**9), entry(instance, "fine")]).json()
    assert (data["accepted"], data["rejected"]) == (1, 1)
    huge = data["results"][0]
    assert huge["code"] == "validation_error" and huge["field"] == "input_tokens"
    assert "1007000.000000 USD" in huge["message"]
    assert [e.idempotency_key for e in UsageEntry.objects.all()] == ["fine"]


def test_rollups_equal_the_sum_of_entries(tenant, instance, ingest):
    PriceFactory(tenant=tenant, provider="openai", model="gpt-4.1")
    days = ["2026-11-18T23:59:59Z", "2026-11-19T00:00:00Z", "2026-11-19T12:00:00+05:00"]
    for n in range(3):
        batch = [
            entry(instance, f"b{n}-{i}", at=days[i % 3], input_tokens=100 * i + n, model=("gpt-4.1", "m2")[i % 2])
            for i in range(40)
        ]
        ingest(batch)
    entries = UsageEntry.objects.aggregate(n=Sum("input_tokens"), out=Sum("output_tokens"), cost=Sum("cost_usd"))
    rollups = DailyRollup.objects.aggregate(
        e=Sum("entries"), n=Sum("input_tokens"), out=Sum("output_tokens"), cost=Sum("cost_usd")
    )
    assert rollups["e"] == UsageEntry.objects.count() == 120
    assert (rollups["n"], rollups["out"], rollups["cost"]) == (entries["n"], entries["out"], entries["cost"])
    # 12:00+05:00 is 07:00 UTC on the 19th; 23:59:59Z stays on the 18th.
    assert set(DailyRollup.objects.values_list("day", flat=True)) == {date(2026, 11, 18), date(2026, 11, 19)}
    for row in DailyRollup.objects.all():
        same = UsageEntry.objects.filter(
            instance=row.instance, provider=row.provider, model=row.model, occurred_at__date=row.day
        )
        assert row.entries == same.count()
        assert row.cost_usd == same.aggregate(c=Sum("cost_usd"))["c"]


def test_bound_runtime_key_reports_only_for_its_instance(tenant, instance, template, ingest):
    from tests.factories import InstanceFactory, VersionFactory

    sibling = InstanceFactory(version=VersionFactory(template=template))
    _, secret = make_api_key(tenant, ["runtime"], instance=instance)
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    data = ingest([entry(instance, "mine"), entry(sibling, "theirs")], client=client).json()
    assert [r["result"] for r in data["results"]] == ["accepted", "rejected"]
    assert data["results"][1]["code"] == "instance_not_found"


def test_roles_and_batch_shape(viewer, operator, instance, ingest, anon):
    assert_error(ingest([entry(instance, "v")], client=viewer.client), 403, "role_required")
    assert_error(anon.post(USAGE, {"entries": []}, format="json"), 401, "not_authenticated")
    assert_error(ingest([]), 400, "validation_error", contains=["entries"])
    response = operator.client.post(USAGE, {"entries": [entry(instance, "x")], "extra": 1}, format="json")
    assert_error(response, 400, "validation_error", contains=["extra", "Unknown field."])
    assert UsageEntry.objects.count() == 0


def test_a_batch_is_capped_at_1000_entries_before_anything_is_written(instance, ingest):
    over = [entry(instance, f"k{i}") for i in range(MAX_ENTRIES_PER_BATCH + 1)]
    assert_error(ingest(over), 413, "too_many_entries", contains=["At most 1000 entries per batch, not 1001"])
    assert UsageEntry.objects.count() == 0 and not change_records(event_type=EventType.USAGE_INGESTED)
    assert ingest(over[:MAX_ENTRIES_PER_BATCH]).json()["accepted"] == MAX_ENTRIES_PER_BATCH


def test_idempotency_keys_are_scoped_per_instance(tenant, instance, template, ingest):
    # A runtime bound to another instance used the key first: it must not claim this instance's entry.
    other = InstanceFactory(version=VersionFactory(template=template))
    _, secret = make_api_key(tenant, ["runtime"], instance=other)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert ingest([entry(other, "call-1", cost_usd="0.01")], client=client).json()["accepted"] == 1
    data = ingest([entry(instance, "call-1", cost_usd="250")]).json()
    assert (data["accepted"], data["duplicates"], data["conflicts"]) == (1, 0, 0)
    assert InstanceSpend.objects.get(instance=instance, period="day").actual_usd == Decimal("250")
    # The same key of two instances in one batch is two calls.
    data = ingest([entry(instance, "call-2"), entry(other, "call-2")]).json()
    assert [r["result"] for r in data["results"]] == ["accepted", "accepted"]
    assert UsageEntry.objects.filter(idempotency_key="call-2").count() == 2


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"cost_usd": "2.5"}, "cost_usd"),
        ({"cost_usd": None}, "cost_usd"),  # the first was reported; this one would be priced
        ({"input_tokens": 1001, "model": "gpt-4.1-mini"}, "model, input_tokens"),
        ({"at": "2026-11-20T10:00:01Z"}, "occurred_at"),
        ({"tool_name": "crm.lookup"}, "tool_name"),
    ],
)
def test_a_replay_with_other_content_is_a_conflict_not_a_duplicate(instance, ingest, change, fields):
    first = entry(instance, "call-1", cost_usd="1.5")
    assert ingest([first]).json()["accepted"] == 1
    replay = {**first, **{k: v for k, v in change.items() if k != "at"}}
    if "at" in change:
        replay["occurred_at"] = change["at"]
    data = ingest([replay, entry(instance, "call-1", cost_usd="1.5")]).json()
    assert (data["accepted"], data["duplicates"], data["conflicts"], data["rejected"]) == (0, 1, 1, 0)
    conflict, same = data["results"]
    assert conflict["result"] == "conflict" and conflict["code"] == "idempotency_conflict"
    assert conflict["field"] == "idempotency_key" and f"({fields} differ)" in conflict["message"]
    assert same == {"index": 1, "idempotency_key": "call-1", "result": "duplicate"}
    stored = UsageEntry.objects.get()
    assert stored.cost_usd == Decimal("1.5") and stored.input_tokens == 1000
    [record] = change_records(event_type=EventType.USAGE_INGESTED)  # the replay accepted nothing: no record
    assert record.payload["accepted"] == 1


def test_the_same_key_twice_in_one_batch_with_other_content_is_a_conflict(instance, ingest):
    data = ingest(
        [entry(instance, "k", cost_usd="1"), entry(instance, "k", cost_usd="2"), entry(instance, "k", cost_usd="1")]
    ).json()
    assert [r["result"] for r in data["results"]] == ["accepted", "conflict", "duplicate"]
    assert "earlier in this batch (entry 0)" in data["results"][1]["message"]
    assert UsageEntry.objects.get().cost_usd == Decimal("1")
    # A copy of a refused entry is refused alike, not counted as a duplicate of nothing.
    huge = entry(instance, "h", input_tokens=10**9, output_tokens=10**9)
    PriceFactory(tenant=instance.tenant, provider="openai", model="gpt-4.1", output_usd_per_mtok=Decimal("999999"))
    data = ingest([huge, dict(huge)]).json()
    assert [r["result"] for r in data["results"]] == ["rejected", "rejected"]
    assert data["results"][1]["index"] == 1 and data["results"][1]["code"] == "validation_error"
