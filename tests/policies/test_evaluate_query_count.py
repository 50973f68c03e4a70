"""Evaluation loads what it needs in a fixed number of queries, whatever the history, the number of
policies, instances, approvals or manifest entries."""

from decimal import Decimal

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from approvals.services import approval_decide
from policies.services import policy_evaluate
from tests.conftest import count_queries
from tests.policies.factories import TOOLS, PolicyFactory, make_approval, make_instance


def test_evaluate_query_count_does_not_grow_with_data(tenant, policy, evaluate):
    small = make_instance(tenant, policy=policy)
    big = make_instance(tenant, policy=policy, tools=TOOLS + [{"name": f"t{i}", "risk": "low"} for i in range(200)])
    evaluate(small)  # warm caches
    counts = {}
    for name, inst in (("small", small), ("big", big)):
        for n in range(30):
            make_approval(inst, params={"n": n})
            PolicyFactory(tenant=tenant)
        evaluate(inst)
        counts[name] = (
            count_queries(lambda inst=inst: evaluate(inst, "crm.lookup")),
            count_queries(lambda inst=inst: evaluate(inst, "shell.exec")),
            count_queries(lambda inst=inst: evaluate(inst, "crm.lookup", estimated_cost_usd="0.01")),
        )
    assert counts["small"] == counts["big"]
    assert max(counts["small"]) <= 10, counts


# The queries of one evaluation, per path, at most as many as when ``policy_evaluate`` was split into its
# phases (SQLite counts one more than PostgreSQL where an approval is written): a phase that starts reading
# again shows up here.
MOST_QUERIES = {
    "allow": 6,
    "deny": 4,
    "no policy": 4,
    "allow with an estimate": 6,
    "allow within a cost limit": 11,
    "open an approval": 10,
    "the same request again": 9,
    "use a granted approval": 12,
    "a used approval": 11,
    # With an idempotency key: the key's claim is one more statement (the instance query reads the key too);
    # a replay reads the instance and the key's decision (with its approval) and writes nothing; a call going
    # through its approval reads the decision instead of the named approval and moves the key's answer.
    "keyed: allow": 9,
    "keyed: replayed": 4,
    "keyed: open an approval": 13,
    "keyed: replayed while pending": 4,
    "keyed: allowed through its approval": 13,
    "keyed: that allow replayed": 4,
}


def test_each_evaluation_path_stays_within_its_queries(tenant, operator, approver):
    plain = make_instance(tenant, policy=PolicyFactory(tenant=tenant, autonomy_tier=3))
    limited = make_instance(tenant, policy=PolicyFactory(tenant=tenant, cost_limit_daily_usd=Decimal("10")))
    bare = make_instance(tenant, policy=None)
    granted = make_approval(
        plain, tool="payments.refund", params={"n": 2}, status=ApprovalStatus.APPROVED, decided_by="user:approver"
    )

    def run(instance, tool="crm.lookup", **kwargs):
        return policy_evaluate(tenant=tenant, instance_id=instance.pk, tool=tool, actor=operator.actor, **kwargs)

    run(plain)  # warm caches
    resumed = {"n": 4}  # a keyed call whose approval was approved since
    opened = run(plain, "payments.refund", params=resumed, idempotency_key="c").approval_id

    def resume():
        return run(plain, "payments.refund", params=resumed, idempotency_key="c")

    approval_decide(approval=ApprovalRequest.objects.get(pk=opened), approve=True, actor=approver.actor)
    paths = {
        "allow": lambda: run(plain),
        "deny": lambda: run(plain, "shell.exec"),
        "no policy": lambda: run(bare),
        "allow with an estimate": lambda: run(plain, estimated_cost_usd=Decimal("0.01")),
        "allow within a cost limit": lambda: run(limited, estimated_cost_usd=Decimal("0.01")),
        "open an approval": lambda: run(plain, "payments.refund", params={"n": 1}),
        "the same request again": lambda: run(plain, "payments.refund", params={"n": 1}),
        "use a granted approval": lambda: run(plain, "payments.refund", params={"n": 2}, approval_id=granted.pk),
        "a used approval": lambda: run(plain, "payments.refund", params={"n": 2}, approval_id=granted.pk),
        "keyed: allow": lambda: run(plain, idempotency_key="a"),
        "keyed: replayed": lambda: run(plain, idempotency_key="a"),
        "keyed: open an approval": lambda: run(plain, "payments.refund", params={"n": 3}, idempotency_key="b"),
        "keyed: replayed while pending": lambda: run(plain, "payments.refund", params={"n": 3}, idempotency_key="b"),
        "keyed: allowed through its approval": resume,
        "keyed: that allow replayed": resume,
    }
    counts = {name: count_queries(call) for name, call in paths.items()}
    assert all(counts[name] <= MOST_QUERIES[name] for name in paths), counts
