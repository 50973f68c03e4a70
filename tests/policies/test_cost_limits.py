"""Daily and monthly cost limits (UTC) from the per-instance spend counters: equal to the limit is
allowed, one cent over is denied; only ALLOW adds spend."""

from datetime import UTC, date, datetime
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from policies.choices import SpendPeriod
from policies.models import InstanceSpend
from policies.services import spend_periods
from tests.policies.factories import PolicyFactory, make_instance


def spend(instance, period):
    row = InstanceSpend.objects.filter(instance=instance, period=period).order_by("-period_start").first()
    return row.amount_usd if row else Decimal("0")


@pytest.fixture
def limited(tenant):
    policy = PolicyFactory(
        tenant=tenant, autonomy_tier=3, cost_limit_daily_usd=Decimal("10.00"), cost_limit_monthly_usd=Decimal("25.00")
    )
    return make_instance(tenant, policy=policy)


def test_estimate_reaching_the_daily_limit_exactly_is_allowed(limited, evaluate):
    assert evaluate(limited, estimated_cost_usd="6.00").json()["decision"] == "ALLOW"
    assert evaluate(limited, estimated_cost_usd="4.00").json()["decision"] == "ALLOW"
    assert spend(limited, SpendPeriod.DAY) == Decimal("10.00")


def test_one_cent_over_the_daily_limit_is_denied_and_adds_nothing(limited, evaluate):
    assert evaluate(limited, estimated_cost_usd="9.99").json()["decision"] == "ALLOW"
    data = evaluate(limited, estimated_cost_usd="0.02").json()
    assert data["decision"] == "DENY"
    assert data["reasons"][0]["code"] == "cost_limit"
    assert "Daily" in data["reasons"][0]["message"]
    assert spend(limited, SpendPeriod.DAY) == Decimal("9.99")
    assert evaluate(limited, estimated_cost_usd="0.01").json()["decision"] == "ALLOW"


def test_single_estimate_above_the_daily_limit_is_denied(limited, evaluate):
    data = evaluate(limited, estimated_cost_usd="10.01").json()
    assert (data["decision"], data["reasons"][0]["code"]) == ("DENY", "cost_limit")
    assert not InstanceSpend.objects.filter(instance=limited, amount_usd__gt=0).exists()


def test_monthly_limit_counts_spend_of_earlier_days(limited, evaluate):
    month_start = date(2026, 11, 1)
    InstanceSpend.objects.create(
        tenant=limited.tenant,
        instance=limited,
        period=SpendPeriod.MONTH,
        period_start=month_start,
        amount_usd=Decimal("20.00"),
    )
    with mock.patch("policies.services.timezone.now", return_value=datetime(2026, 11, 25, 9, tzinfo=UTC)):
        assert evaluate(limited, estimated_cost_usd="5.00").json()["decision"] == "ALLOW"
        data = evaluate(limited, estimated_cost_usd="0.01").json()
    assert data["decision"] == "DENY" and "Monthly" in data["reasons"][0]["message"]
    assert InstanceSpend.objects.get(instance=limited, period=SpendPeriod.MONTH).amount_usd == Decimal("25.00")
    assert InstanceSpend.objects.get(instance=limited, period=SpendPeriod.DAY).amount_usd == Decimal("5.00")


def test_days_and_months_are_utc_and_start_fresh(limited, evaluate):
    late = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    next_day = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)
    with mock.patch("policies.services.timezone.now", return_value=late):
        assert evaluate(limited, estimated_cost_usd="10.00").json()["decision"] == "ALLOW"
        assert evaluate(limited, estimated_cost_usd="0.01").json()["decision"] == "DENY"
    with mock.patch("policies.services.timezone.now", return_value=next_day):
        assert evaluate(limited, estimated_cost_usd="10.00").json()["decision"] == "ALLOW"
    days = dict(InstanceSpend.objects.filter(instance=limited, period="day").values_list("period_start", "amount_usd"))
    assert days == {date(2026, 11, 30): Decimal("10.00"), date(2026, 12, 1): Decimal("10.00")}
    months = dict(
        InstanceSpend.objects.filter(instance=limited, period="month").values_list("period_start", "amount_usd")
    )
    assert months == {date(2026, 11, 1): Decimal("10.00"), date(2026, 12, 1): Decimal("10.00")}


def test_needs_approval_and_deny_add_no_spend(tenant, evaluate):
    policy = PolicyFactory(tenant=tenant, autonomy_tier=2, cost_limit_daily_usd=Decimal("100"))
    inst = make_instance(tenant, policy=policy)
    assert evaluate(inst, "email.send", estimated_cost_usd="3.00").json()["decision"] == "NEEDS_APPROVAL"
    assert evaluate(inst, "shell.exec", estimated_cost_usd="3.00").json()["decision"] == "DENY"
    assert spend(inst, SpendPeriod.DAY) == 0 and spend(inst, SpendPeriod.MONTH) == 0
    assert evaluate(inst, "crm.lookup", estimated_cost_usd="3.00").json()["decision"] == "ALLOW"
    assert spend(inst, SpendPeriod.DAY) == Decimal("3.00") and spend(inst, SpendPeriod.MONTH) == Decimal("3.00")


def test_spend_is_counted_without_limits_too(instance, evaluate):
    evaluate(instance, estimated_cost_usd="1.2345")
    evaluate(instance, estimated_cost_usd="0.0001")
    assert spend(instance, SpendPeriod.DAY) == Decimal("1.2346")


def test_cost_limit_is_checked_before_the_tier(tenant, evaluate):
    policy = PolicyFactory(tenant=tenant, autonomy_tier=1, cost_limit_daily_usd=Decimal("1"))
    inst = make_instance(tenant, policy=policy)
    data = evaluate(inst, "crm.lookup", estimated_cost_usd="1.01").json()
    assert (data["decision"], data["reasons"][0]["code"], data["approval"]) == ("DENY", "cost_limit", None)


def test_a_lowered_limit_denies_once_spend_is_above_it(limited, evaluate):
    evaluate(limited, estimated_cost_usd="8.00")
    limited.policy_attachment.policy.cost_limit_daily_usd = Decimal("5.00")
    limited.policy_attachment.policy.save()
    assert evaluate(limited).json()["reasons"][0]["code"] == "cost_limit"


def test_a_read_without_an_increment_counts_only_the_current_periods_in_the_instance_query(limited, evaluate):
    """No estimate: nothing to add, so the counters are not locked; they come with the instance query
    (two LEFT JOINs on the counters' key), and only today's and this month's rows count."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    now = datetime(2026, 11, 25, 9, tzinfo=UTC)
    old = [
        (SpendPeriod.DAY, date(2026, 11, 24), "50"),  # yesterday, far over the $10 daily limit
        (SpendPeriod.MONTH, date(2026, 10, 1), "500"),  # last month, far over the $25 monthly limit
    ]
    for period, start, amount in old:
        InstanceSpend.objects.create(
            tenant=limited.tenant, instance=limited, period=period, period_start=start, actual_usd=Decimal(amount)
        )
    with mock.patch("policies.services.timezone.now", return_value=now):
        with CaptureQueriesContext(connection) as queries:
            assert evaluate(limited).json()["decision"] == "ALLOW"
        spend_reads = [
            q["sql"] for q in queries if q["sql"].startswith("SELECT") and "policies_instancespend" in q["sql"]
        ]
        assert len(spend_reads) == 1 and "registry_agentinstance" in spend_reads[0], spend_reads
        # the ALLOW above created this month's counter; the ledger then adds reported usage to it
        InstanceSpend.objects.filter(instance=limited, period=SpendPeriod.MONTH, period_start=date(2026, 11, 1)).update(
            actual_usd=Decimal("25.01")
        )
        data = evaluate(limited).json()
    assert data["decision"] == "DENY" and "this month (UTC, reported usage)" in data["reasons"][0]["message"], data


def test_the_estimate_counters_hold_sums_far_beyond_any_fleet(tenant, instance, evaluate):
    """amount_usd sums estimates of up to 1,000,000 each: numeric(28,4) holds 10^24 - 1 (numeric(16,4) held
    10^12 - 1, which 1,000,000 calls at the largest estimate overflowed). SQLite stores numbers beyond 2^63
    as binary floats, so there the sum tested is 10^15, past the old bound still."""
    today, month = spend_periods(timezone.now())
    near = Decimal("999999999999999998000000") if connection.vendor == "postgresql" else Decimal(10**15)
    for period, start in ((SpendPeriod.DAY, today), (SpendPeriod.MONTH, month)):
        InstanceSpend.objects.create(
            tenant=tenant, instance=instance, period=period, period_start=start, amount_usd=near
        )
    assert evaluate(instance, "crm.lookup", estimated_cost_usd="1000000").json()["decision"] == "ALLOW"
    assert spend(instance, SpendPeriod.DAY) == near + Decimal("1000000")
    assert spend(instance, SpendPeriod.MONTH) == near + Decimal("1000000")
