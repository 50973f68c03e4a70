import pytest

from approvals.models import ApprovalRequest
from tests.policies import conftest as shared

# The policy tests' fixtures, shared (a non-root conftest cannot declare pytest_plugins).
policy = shared.policy
instance = shared.instance
evaluate = shared.evaluate

URL = "/api/v1/approvals/"


@pytest.fixture
def pending(instance, evaluate, runtime_key):
    """A PENDING request opened by a real evaluation of the (unbound) runtime key."""
    approval_id = evaluate(instance, "email.send", params={"to": "x@example.com"}, client=runtime_key[1]).json()[
        "approval"
    ]
    return ApprovalRequest.objects.get(pk=approval_id)
