"""Approval center: pending list with context, approve/deny with a note, four eyes, and a decision
made elsewhere shown as "already decided" rather than an error."""

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.choices import ApprovalStatus
from audit.choices import EventType
from tests.helpers import records
from tests.policies.factories import make_approval

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "approval-pending"}


def test_pending_list_shows_the_context(login, approver, world):
    html = login(approver).get(reverse("ui:approvals")).content.decode()
    card = html.split('data-testid="approval-card"', 1)[1]
    assert "email.send" in card and world.instance.name in card
    assert world.template.name in card and "@1.0.0" in card
    assert "ceo@example.com" in card  # params pretty-printed
    assert 'data-status="high"' in card and "needs_approval" in card
    assert "expires <time" in card.split('data-testid="time-left"', 1)[1][:600]
    assert 'hx-trigger="every 5s' in html


def test_polled_partial_has_no_page_chrome(login, viewer, world):
    html = login(viewer).get(reverse("ui:approvals_pending"), **HX).content.decode()
    assert "<html" not in html and 'data-testid="approval-card"' in html
    # The sidebar badge and the tab counter refresh with the list (out-of-band swaps).
    assert 'id="nav-pending" class="ml-auto" hx-swap-oob="true"' in html
    assert 'aria-label="1 pending"' in html and 'id="pending-count" hx-swap-oob="true"' in html


def test_approve_with_a_note(login, approver, world):
    response = login(approver).post(
        reverse("ui:approval_decide", args=[world.approval.pk]), {"decision": "approve", "note": "ok once"}, **HX
    )
    assert response.status_code == 200
    world.approval.refresh_from_db()
    assert world.approval.status == ApprovalStatus.APPROVED and world.approval.note == "ok once"
    assert world.approval.decided_by == f"user:{approver.user.username}"
    assert records(world.approval, EventType.APPROVAL_DECIDED)
    html = response.content.decode()
    assert "Approved email.send" in html and 'data-testid="approval-card"' not in html


def test_deny(login, approver, world):
    login(approver).post(reverse("ui:approval_decide", args=[world.approval.pk]), {"decision": "deny"}, **HX)
    world.approval.refresh_from_db()
    assert world.approval.status == ApprovalStatus.DENIED


def test_decided_elsewhere_shows_already_decided_not_an_error(login, approver, admin_member, world):
    login(admin_member).post(reverse("ui:approval_decide", args=[world.approval.pk]), {"decision": "deny"}, **HX)
    response = login(approver).post(
        reverse("ui:approval_decide", args=[world.approval.pk]), {"decision": "approve"}, **HX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Already decided" in html and "DENIED" in html
    assert 'data-level="info"' in html and 'data-level="error"' not in html
    world.approval.refresh_from_db()
    assert world.approval.status == ApprovalStatus.DENIED


def test_overdue_request_leaves_the_pending_list_and_shows_expired_in_history_without_a_write(login, approver, world):
    past = make_approval(world.instance, tool="crm.update", expires_at=timezone.now() - timezone.timedelta(seconds=1))
    client = login(approver)
    html = client.get(reverse("ui:approvals")).content.decode()
    assert "crm.update" not in html.split("History</a>", 1)[1]
    assert "crm.update" not in client.get(reverse("ui:approvals_pending")).content.decode()
    history = client.get(reverse("ui:approvals"), {"tab": "history", "status": "EXPIRED"}).content.decode()
    table = history.split('data-testid="approval-history"', 1)[1]
    assert "crm.update" in table and "EXPIRED" in table
    past.refresh_from_db()
    assert past.status == ApprovalStatus.PENDING


def test_requester_cannot_decide_their_own_request(login, approver, world):
    own = make_approval(world.instance, tool="crm.update", requester=f"user:{approver.user.username}")
    client = login(approver)
    html = client.get(reverse("ui:approvals")).content.decode()
    assert "someone else must decide it" in html
    response = client.post(reverse("ui:approval_decide", args=[own.pk]), {"decision": "approve"}, **HX)
    assert "Four eyes" in response.content.decode()
    own.refresh_from_db()
    assert own.status == ApprovalStatus.PENDING


def test_history_tab_lists_decided_requests(login, viewer, world):
    make_approval(
        world.instance,
        tool="crm.update",
        status=ApprovalStatus.DENIED,
        decided_by="user:x",
        decided_at=timezone.now(),
        note="nope",
    )
    html = login(viewer).get(reverse("ui:approvals"), {"tab": "history"}).content.decode()
    table = html.split('data-testid="approval-history"', 1)[1]
    assert "crm.update" in table and "nope" in table and "email.send" not in table


def test_a_request_made_through_the_approvers_own_key_is_their_own(login, approver, world):
    """The page asks the four-eyes rule (tenancy.permissions), not a string comparison: a runtime key acting
    for the approver requested this call, so the approver is offered no decision, and the keys of every
    card are resolved in one query, not one per card."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import make_api_key

    key, _ = make_api_key(world.instance.tenant, ["runtime"])
    key.principal = f"user:{approver.user.username}"
    key.save(update_fields=["principal"])
    make_approval(world.instance, tool="crm.update", requester=f"key:{key.prefix}")
    others = [make_api_key(world.instance.tenant, ["runtime"])[0] for _ in range(3)]
    for i, other in enumerate(others):
        make_approval(world.instance, tool=f"tool.{i}", requester=f"key:{other.prefix}")
    client = login(approver)
    with CaptureQueriesContext(connection) as ctx:
        html = client.get(reverse("ui:approvals_pending")).content.decode()
    card = next(c for c in html.split('data-testid="approval-card"')[1:] if "crm.update" in c)
    assert "someone else must decide it" in card and 'data-testid="approve"' not in card
    # Four key-requested cards, two key lookups: the four-eyes principals and the actors' display names.
    assert sum("arm_apikey" in q["sql"] and '"prefix" IN' in q["sql"] for q in ctx.captured_queries) == 2
