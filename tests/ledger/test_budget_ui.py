"""Budgets in the operator UI (the Cost page's New/Edit modal, delete) and budget alerts acknowledged,
in the UI and through ``POST /api/v1/budget-alerts/{id}/acknowledge/``: the same services and roles as
the budgets API, another tenant's objects a 404, one change record per write."""

from decimal import Decimal

import pytest
from django.test import Client

from audit.choices import EventType
from ledger.models import Budget, BudgetAlert
from tests.conftest import change_records
from tests.factories import TemplateFactory
from tests.helpers import assert_error
from tests.ledger.factories import BudgetAlertFactory, BudgetFactory

COST = "/cost/"
NEW = "/cost/budgets/new/"
ACK_API = "/api/v1/budget-alerts/{}/acknowledge/"

pytestmark = pytest.mark.django_db


def _signed_in(member) -> Client:
    client = Client()
    client.force_login(member.user)
    return client


def _form(**overrides) -> dict:
    return {
        "name": "Support monthly",
        "scope": "tenant",
        "template": "",
        "tag": "",
        "period": "monthly",
        "amount_usd": "250.00",
        "thresholds": "50, 80, 100",
        **overrides,
    }


def test_compliance_creates_edits_and_deletes_a_budget_in_the_ui(compliance, tenant, template):
    client = _signed_in(compliance)
    assert 'data-testid="new-budget"' in client.get(COST).content.decode()
    assert 'data-testid="budget-form"' in client.get(NEW).content.decode()
    created = client.post(NEW, _form(scope="template", template=str(template.pk)))
    assert created.status_code in (200, 302), created.content[:500]
    budget = Budget.objects.get(tenant=tenant, name="Support monthly")
    assert (
        budget.template == template and budget.amount_usd == Decimal("250.0000") and budget.thresholds == [50, 80, 100]
    )
    (record,) = change_records(budget, EventType.BUDGET_CREATED)
    assert record.actor.endswith(compliance.user.username)

    edit = f"/cost/budgets/{budget.pk}/edit/"
    assert 'value="Support monthly"' in client.get(edit).content.decode()
    client.post(edit, _form(scope="template", template=str(template.pk), amount_usd="300", thresholds="90"))
    budget.refresh_from_db()
    assert budget.amount_usd == Decimal("300.0000") and budget.thresholds == [90]
    assert len(change_records(budget, EventType.BUDGET_CHANGED)) == 1

    assert client.post(f"/cost/budgets/{budget.pk}/delete/").status_code == 302
    assert not Budget.objects.filter(pk=budget.pk).exists()
    assert len(change_records(budget, EventType.BUDGET_DELETED)) == 1


def test_the_budget_modal_shows_every_error_at_once(compliance, tenant):
    BudgetFactory(tenant=tenant, name="Taken")
    page = _signed_in(compliance).post(
        NEW, _form(name="Taken", scope="tag", tag="", amount_usd="x", thresholds="50, 0")
    )
    text = page.content.decode()
    # The form's (amount), the model's (tag needed, thresholds out of range) and the uniqueness clash.
    for field in ("name", "amount_usd", "tag", "thresholds"):
        assert f'data-field-error="{field}"' in text, field
    assert text.count('data-field-error="amount_usd"') == 1  # the form's error only, not the model's too
    assert Budget.objects.filter(tenant=tenant).count() == 1


def test_a_template_of_another_tenant_is_not_found(compliance, other_tenant):
    foreign = TemplateFactory(tenant=other_tenant)
    text = _signed_in(compliance).post(NEW, _form(scope="template", template=str(foreign.pk))).content.decode()
    assert "Template not found in this tenant." in text
    assert not Budget.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_only_compliance_and_admin_change_budgets_in_the_ui(cast, tenant, role):
    budget = BudgetFactory(tenant=tenant)
    alert = BudgetAlertFactory(budget=budget)
    client = _signed_in(cast[role])
    text = client.get(COST).content.decode()
    assert 'data-testid="new-budget"' not in text and 'data-testid="ack-alert"' not in text
    assert 'data-testid="budget-alert-banner"' in text  # every member still sees the alert
    assert client.get(NEW).status_code == 403
    assert client.post(NEW, _form()).status_code == 403
    assert client.post(f"/cost/budgets/{budget.pk}/edit/", _form()).status_code == 403
    assert client.post(f"/cost/budgets/{budget.pk}/delete/").status_code == 403
    assert client.post(f"/cost/budget-alerts/{alert.pk}/ack/").status_code == 403
    assert Budget.objects.filter(pk=budget.pk).exists()
    assert BudgetAlert.objects.get(pk=alert.pk).acknowledged_at is None


def test_another_tenants_budget_and_alert_are_not_found_in_the_ui(compliance, other_tenant):
    budget = BudgetFactory(tenant=other_tenant)
    alert = BudgetAlertFactory(budget=budget)
    client = _signed_in(compliance)
    assert client.get(f"/cost/budgets/{budget.pk}/edit/").status_code == 404
    assert client.post(f"/cost/budgets/{budget.pk}/edit/", _form()).status_code == 404
    assert client.post(f"/cost/budgets/{budget.pk}/delete/").status_code == 404
    assert client.post(f"/cost/budget-alerts/{alert.pk}/ack/").status_code == 404
    assert Budget.objects.filter(pk=budget.pk).exists()
    assert BudgetAlert.objects.get(pk=alert.pk).acknowledged_at is None
    assert budget.name not in client.get(COST).content.decode()


def test_an_acknowledged_alert_stops_shouting_and_says_who_and_when(compliance, viewer, tenant):
    budget = BudgetFactory(tenant=tenant, name="Tenant monthly")
    alert = BudgetAlertFactory(budget=budget, threshold=80)
    before = _signed_in(viewer).get(COST).content.decode()
    assert 'data-testid="budget-alert-banner"' in before and 'data-testid="budget-alert-badge"' in before
    assert 'data-testid="budget-alerts"' in _signed_in(viewer).get("/incidents/").content.decode()

    assert _signed_in(compliance).post(f"/cost/budget-alerts/{alert.pk}/ack/").status_code == 302
    alert.refresh_from_db()
    assert alert.acknowledged_by.endswith(compliance.user.username) and alert.acknowledged_at is not None
    (record,) = change_records(budget, EventType.BUDGET_ALERT_ACKNOWLEDGED)
    assert record.payload["alert"] == str(alert.pk) and record.payload["threshold"] == 80
    assert record.actor == alert.acknowledged_by

    after = _signed_in(viewer).get(COST).content.decode()
    assert 'data-testid="budget-alert-banner"' not in after and 'data-testid="budget-alert-badge"' not in after
    assert 'data-testid="budget-alerts-acknowledged"' in after and alert.acknowledged_by in after
    # nor on the Incidents page, which lists what still needs someone
    incidents = _signed_in(viewer).get("/incidents/").content.decode()
    assert 'data-testid="budget-alerts-empty"' in incidents and "Tenant monthly" not in incidents


def test_acknowledge_api_once_with_a_record(compliance, tenant):
    budget = BudgetFactory(tenant=tenant)
    alert = BudgetAlertFactory(budget=budget)
    answer = compliance.client.post(ACK_API.format(alert.pk))
    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["id"] == str(alert.pk) and data["acknowledged_by"] and data["acknowledged_at"]
    assert_error(compliance.client.post(ACK_API.format(alert.pk)), 409, "already_acknowledged")
    assert len(change_records(budget, EventType.BUDGET_ALERT_ACKNOWLEDGED)) == 1
    listed = compliance.client.get(f"/api/v1/budgets/{budget.pk}/alerts/").json()["results"]
    assert listed[0]["acknowledged_by"] == data["acknowledged_by"]


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_acknowledge_api_needs_compliance_or_admin(cast, tenant, role):
    alert = BudgetAlertFactory(budget=BudgetFactory(tenant=tenant))
    assert_error(cast[role].client.post(ACK_API.format(alert.pk)), 403, "role_required")
    assert BudgetAlert.objects.get(pk=alert.pk).acknowledged_at is None


def test_acknowledge_api_admin_may(admin_member, tenant):
    alert = BudgetAlertFactory(budget=BudgetFactory(tenant=tenant))
    assert admin_member.client.post(ACK_API.format(alert.pk)).status_code == 200


def test_acknowledge_api_another_tenants_alert_is_not_found(compliance, outsider, tenant, other_tenant):
    theirs = BudgetAlertFactory(budget=BudgetFactory(tenant=other_tenant))
    ours = BudgetAlertFactory(budget=BudgetFactory(tenant=tenant))
    assert compliance.client.post(ACK_API.format(theirs.pk)).status_code == 404
    assert outsider.client.post(ACK_API.format(ours.pk)).status_code == 404
    assert compliance.client.post(ACK_API.format("not-a-uuid")).status_code == 404
    assert not BudgetAlert.objects.filter(acknowledged_at__isnull=False).exists()


def test_an_empty_submit_is_the_form_again_not_an_error(compliance):
    page = _signed_in(compliance).post(NEW, {})
    assert page.status_code == 200 and 'data-testid="budget-form"' in page.content.decode()
    assert not Budget.objects.exists()
