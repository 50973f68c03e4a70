"""Budgets: API validation and change records, spend from the rollups per scope, thresholds crossing
once per period (BudgetAlert + BUDGET_THRESHOLD_CROSSED), the alerts list."""

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.choices import EventType
from ledger.choices import BudgetPeriod, BudgetScope
from ledger.models import Budget, BudgetAlert
from ledger.selectors import budget_period_spend, budget_status
from tests.conftest import assert_constant_queries, change_records
from tests.factories import InstanceFactory, TemplateFactory, VersionFactory
from tests.helpers import assert_error
from tests.ledger.factories import BudgetFactory, entry

BUDGETS = "/api/v1/budgets/"


def _at(day: str) -> str:
    return f"{day}T12:00:00Z"


def test_thresholds_cross_once_per_period(tenant, instance, ingest):
    budget = BudgetFactory(tenant=tenant, amount_usd=Decimal("10"), thresholds=[50, 80, 100])
    ingest([entry(instance, "a", at=_at("2026-11-02"), cost_usd="4.99")])
    assert BudgetAlert.objects.count() == 0
    ingest([entry(instance, "b", at=_at("2026-11-03"), cost_usd="0.01")])  # exactly 50 %
    ingest([entry(instance, "c", at=_at("2026-11-04"), cost_usd="4")])  # 90 %: crosses 80 only
    ingest([entry(instance, "c", at=_at("2026-11-04"), cost_usd="4")])  # a retry: nothing new
    ingest([entry(instance, "d", at=_at("2026-11-05"), cost_usd="0.5")])  # 95 %
    alerts = list(BudgetAlert.objects.order_by("threshold"))
    assert [(a.threshold, a.spend_usd, a.period_start) for a in alerts] == [
        (50, Decimal("5"), date(2026, 11, 1)),
        (80, Decimal("9"), date(2026, 11, 1)),
    ]
    records = change_records(event_type=EventType.BUDGET_THRESHOLD_CROSSED)
    assert [r.payload["threshold"] for r in records] == [50, 80]
    assert records[0].target_id == str(budget.pk) and records[0].payload["spend_usd"] == "5.000000"
    # Another month is another period: the thresholds cross there too (late usage of October).
    ingest([entry(instance, "e", at=_at("2026-10-31"), cost_usd="20")])
    assert sorted(BudgetAlert.objects.filter(period_start=date(2026, 10, 1)).values_list("threshold", flat=True)) == [
        50,
        80,
        100,
    ]


def test_daily_budget_and_scopes_count_only_their_templates(tenant, instance, template, ingest):
    other = InstanceFactory(version=VersionFactory(template=TemplateFactory(tenant=tenant, tags=["batch"])))
    daily = BudgetFactory(tenant=tenant, period=BudgetPeriod.DAILY, amount_usd=Decimal("1"), thresholds=[100])
    by_template = BudgetFactory(tenant=tenant, scope=BudgetScope.TEMPLATE, template=template, thresholds=[10])
    by_tag = BudgetFactory(tenant=tenant, scope=BudgetScope.TAG, tag="batch", thresholds=[10])
    ingest(
        [
            entry(instance, "i1", at=_at("2026-11-10"), cost_usd="0.6"),
            entry(other, "o1", at=_at("2026-11-10"), cost_usd="0.6"),
            entry(other, "o2", at=_at("2026-11-11"), cost_usd="15"),
        ]
    )
    assert budget_period_spend(daily, date(2026, 11, 10)) == Decimal("1.2")
    assert budget_period_spend(daily, date(2026, 11, 11)) == Decimal("15")
    assert budget_period_spend(by_template, date(2026, 11, 1)) == Decimal("0.6")
    assert budget_period_spend(by_tag, date(2026, 11, 1)) == Decimal("15.6")
    crossed = set(BudgetAlert.objects.values_list("budget__name", "period_start", "threshold"))
    assert crossed == {
        (daily.name, date(2026, 11, 10), 100),
        (daily.name, date(2026, 11, 11), 100),
        (by_tag.name, date(2026, 11, 1), 10),
    }


def test_budget_api_crud_validation_and_records(compliance, viewer, operator, tenant, template, other_tenant):
    foreign = TemplateFactory(tenant=other_tenant)
    base = {"name": "Support monthly", "scope": "template", "template": str(template.pk), "period": "monthly"}
    created = compliance.client.post(BUDGETS, {**base, "amount_usd": "500.00"}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["thresholds"] == [50, 80, 100]
    assert body["current"]["spend_usd"] == "0.000000" and body["recent_alerts"] == []
    budget_id = body["id"]
    cases = [
        ({**base, "name": "x", "amount_usd": "0"}, "amount_usd"),
        ({**base, "name": "x", "amount_usd": "100000000000.0000"}, "amount_usd"),  # more than 14 digits
        ({**base, "name": "x", "amount_usd": "5", "template": None}, "template"),
        ({**base, "name": "x", "amount_usd": "5", "template": str(foreign.pk)}, "template"),
        ({**base, "name": "x", "amount_usd": "5", "scope": "tag", "template": None, "tag": "Not A Slug"}, "tag"),
        ({**base, "name": "x", "amount_usd": "5", "scope": "tenant", "tag": "support"}, "tag"),
        ({**base, "name": "x", "amount_usd": "5", "thresholds": [50, 50]}, "thresholds"),
        ({**base, "name": "x", "amount_usd": "5", "thresholds": [0]}, "thresholds"),
        ({**base, "name": "x", "amount_usd": "5", "period": "weekly"}, "period"),
        ({**base, "name": "x", "amount_usd": "5", "owner": "me"}, "owner"),
    ]
    for payload, field in cases:
        assert_error(compliance.client.post(BUDGETS, payload, format="json"), 400, "validation_error", contains=[field])
    assert_error(compliance.client.post(BUDGETS, {**base, "amount_usd": "5"}, format="json"), 409, "conflict")
    assert_error(
        operator.client.post(BUDGETS, {**base, "name": "y", "amount_usd": "5"}, format="json"), 403, "role_required"
    )
    patched = compliance.client.patch(f"{BUDGETS}{budget_id}/", {"amount_usd": "750.00"}, format="json")
    assert patched.json()["amount_usd"] == "750.0000"
    listed = viewer.client.get(BUDGETS).json()
    assert listed["count"] == 1 and listed["results"][0]["current"]["percent"] == "0.0"
    assert compliance.client.delete(f"{BUDGETS}{budget_id}/").status_code == 204
    events = [r.event_type for r in change_records() if r.target_id == budget_id]
    assert events == [EventType.BUDGET_CREATED, EventType.BUDGET_CHANGED, EventType.BUDGET_DELETED]
    assert not Budget.objects.exists()


def test_alerts_endpoint_and_budget_detail(tenant, instance, viewer, ingest):
    budget = BudgetFactory(tenant=tenant, amount_usd=Decimal("1"), thresholds=[50, 100])
    now = timezone.now()
    ingest([entry(instance, "x", at=now.isoformat(), cost_usd="1.5")])
    alerts = viewer.client.get(f"{BUDGETS}{budget.pk}/alerts/").json()
    assert sorted(a["threshold"] for a in alerts["results"]) == [50, 100]
    assert alerts["count"] == 2
    detail = viewer.client.get(f"{BUDGETS}{budget.pk}/").json()
    assert detail["current"]["crossed_thresholds"] == [50, 100]
    assert detail["current"]["percent"] == "150.0"
    assert len(detail["recent_alerts"]) == 2
    status = budget_status(budget, now)
    assert status.spend_usd == Decimal("1.5") and status.crossed == (50, 100)


@pytest.mark.parametrize("period", [BudgetPeriod.DAILY, BudgetPeriod.MONTHLY])
def test_period_bounds(period):
    budget = Budget(period=period)
    start, end = budget.period_bounds(date(2026, 12, 31))
    if period == BudgetPeriod.DAILY:
        assert (start, end) == (date(2026, 12, 31), date(2027, 1, 1))
    else:
        assert (start, end) == (date(2026, 12, 1), date(2027, 1, 1))


def test_budget_list_runs_a_constant_number_of_queries(tenant, template, viewer):
    counter = iter(range(10_000))

    def make(n):
        for _ in range(n):
            i = next(counter)
            scope = (BudgetScope.TENANT, BudgetScope.TEMPLATE, BudgetScope.TAG)[i % 3]
            BudgetFactory(
                tenant=tenant,
                scope=scope,
                template=template if scope == BudgetScope.TEMPLATE else None,
                tag="support" if scope == BudgetScope.TAG else "",
                period=(BudgetPeriod.DAILY, BudgetPeriod.MONTHLY)[i % 2],
            )

    assert_constant_queries(make, lambda: viewer.client.get(f"{BUDGETS}?page_size=1000"), small=6, large=60)


def test_alerts_threshold_filter_takes_whole_percents(tenant, viewer):
    budget = BudgetFactory(tenant=tenant)
    assert viewer.client.get(f"{BUDGETS}{budget.pk}/alerts/?threshold=80").status_code == 200
    assert_error(
        viewer.client.get(f"{BUDGETS}{budget.pk}/alerts/?threshold=0.5"),
        400,
        "validation_error",
        contains=["threshold"],
    )


def test_alerts_period_start_is_a_date_without_padding(tenant, viewer):
    budget = BudgetFactory(tenant=tenant)
    assert viewer.client.get(f"{BUDGETS}{budget.pk}/alerts/?period_start=2026-11-01").status_code == 200
    for padded in ("2026-11-01%0A", "%1E", "%202026-11-01"):
        assert_error(
            viewer.client.get(f"{BUDGETS}{budget.pk}/alerts/?period_start={padded}"),
            400,
            "validation_error",
            contains=["period_start"],
        )


def test_budget_detail_of_a_huge_budget_has_no_runout_date(tenant, instance, compliance, ingest):
    """A budget far beyond the run rate: its run-out would be past any date (was a 500)."""
    ingest([entry(instance, "tiny", at=timezone.now().isoformat(), cost_usd="0.0001")])
    created = compliance.client.post(
        BUDGETS,
        {"name": "Huge", "scope": "tenant", "period": "monthly", "amount_usd": "9999999999.9999"},
        format="json",
    )
    assert created.status_code == 201, created.content
    detail = compliance.client.get(f"{BUDGETS}{created.json()['id']}/")
    assert detail.status_code == 200 and detail.json()["forecast"]["runout_date"] is None
