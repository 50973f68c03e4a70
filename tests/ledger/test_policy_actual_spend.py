"""Policy cost limits count actual spend from the ledger: max(estimates, reported usage) per period."""

from decimal import Decimal

from django.utils import timezone

from policies.engine import decide
from tests.ledger.factories import entry
from tests.policies.factories import PolicyFactory, eval_in, make_instance, policy_in, usd

EVALUATE = "/api/v1/policy/evaluate/"


def test_engine_denies_on_actual_spend_past_the_limit():
    policy = policy_in(cost_limit_daily_usd=usd("10"), cost_limit_monthly_usd=usd("100"))
    over = decide(eval_in(policy=policy, spend_today_usd=usd("2"), actual_today_usd=usd("10.01")))
    assert over.decision == "DENY"
    assert over.reasons[0].code == "cost_limit"
    assert "spent $10.01 today (UTC, reported usage)" in over.reasons[0].message
    monthly = decide(eval_in(policy=policy, actual_month_usd=usd("100.5")))
    assert monthly.reasons[0].code == "cost_limit" and "this month (UTC, reported usage)" in monthly.reasons[0].message


def test_engine_does_not_add_estimates_and_actuals():
    # $6 estimated and $6 reported are the same calls: $6 counted, not $12, so a $1 call fits under $10.
    policy = policy_in(cost_limit_daily_usd=usd("10"))
    outcome = decide(
        eval_in(policy=policy, spend_today_usd=usd("6"), actual_today_usd=usd("6"), estimated_cost_usd=usd("1"))
    )
    assert outcome.decision == "ALLOW"
    # The estimates still count when they are the larger (reports of recent calls not in yet).
    high = decide(
        eval_in(policy=policy, spend_today_usd=usd("9.5"), actual_today_usd=usd("1"), estimated_cost_usd=usd("1"))
    )
    assert high.decision == "DENY" and "spent $9.50 today (UTC)" in high.reasons[0].message


def test_instance_past_its_limit_on_reported_usage_is_denied(tenant, operator, ingest):
    policy = PolicyFactory(tenant=tenant, autonomy_tier=5, cost_limit_daily_usd=Decimal("5.00"))
    instance = make_instance(tenant, policy=policy)
    now = timezone.now().isoformat()
    allowed = operator.client.post(EVALUATE, {"instance": str(instance.pk), "tool": "crm.lookup"}, format="json")
    assert allowed.json()["decision"] == "ALLOW"
    assert ingest([entry(instance, "big-call", at=now, cost_usd="5.20")]).json()["accepted"] == 1
    response = operator.client.post(EVALUATE, {"instance": str(instance.pk), "tool": "crm.lookup"}, format="json")
    body = response.json()
    assert body["decision"] == "DENY", body
    assert body["reasons"][0]["code"] == "cost_limit"
    assert "$5.20 today (UTC, reported usage)" in body["reasons"][0]["message"]
