"""The link an approval's notification carries (``/approvals/?approval=<id>``) marks that request in the
Approval center, also after the pending list refreshes itself; a request no longer pending says so."""

import pytest
from django.test import Client

from approvals.choices import ApprovalStatus
from notifications.catalogue import approval_link
from tests.policies.factories import make_approval, make_instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def approver_client(approver):
    client = Client()
    client.force_login(approver.user)
    return client


def test_the_link_marks_its_request(tenant, approver_client):
    instance = make_instance(tenant)
    wanted, other = make_approval(instance), make_approval(instance, tool="crm.lookup")
    path = approval_link(wanted.pk).split("://", 1)[1].partition("/")[2]
    html = approver_client.get(f"/{path}").content.decode()
    assert html.count("data-focused") == 1
    marked = html[html.index("data-focused") - 400 : html.index("data-focused")]
    assert f'id="approval-{wanted.pk}"' in marked and str(other.pk) not in marked
    assert "autofocus" in html  # the page scrolls to it
    polled = approver_client.get(f"/approvals/pending/?approval={wanted.pk}").content.decode()
    assert polled.count("data-focused") == 1 and "autofocus" not in polled  # the refresh keeps it, not the focus
    assert 'data-testid="approval-focus-gone"' not in html


def test_a_decided_request_says_it_is_not_pending_any_more(tenant, approver_client):
    decided = make_approval(make_instance(tenant), status=ApprovalStatus.DENIED)
    html = approver_client.get(f"/approvals/?approval={decided.pk}").content.decode()
    assert 'data-testid="approval-focus-gone"' in html and "data-focused" not in html
