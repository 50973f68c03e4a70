"""Evaluation loads what it needs in a fixed number of queries, whatever the history, the number of
policies, instances, approvals or manifest entries."""

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
