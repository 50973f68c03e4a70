"""Django admin for notifications: tenant-scoped lists, no secret on any page, edits through the service
(its validation and change record), no add (the secret is shown where an endpoint is made), deliveries
read-only with their attempts and a redeliver action through the service."""

import pytest
from django.test import Client
from django.utils import timezone

from notifications.choices import DeliveryStatus
from notifications.models import Delivery
from tests.factories import MembershipFactory, UserFactory
from tests.helpers import records
from tests.notifications.factories import DeliveryFactory, EndpointFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_admin(tenant):
    user = UserFactory(username="acme-staff", is_staff=True)
    MembershipFactory(tenant=tenant, user=user, roles=["admin"])
    client = Client()
    client.force_login(user)
    return client


def test_lists_show_only_the_admins_tenant_and_never_a_secret(staff_admin, tenant, other_tenant):
    mine = EndpointFactory(tenant=tenant, name="mine-hook")
    theirs = EndpointFactory(tenant=other_tenant, name="theirs-hook")
    DeliveryFactory(endpoint=mine)
    DeliveryFactory(endpoint=theirs)
    page = staff_admin.get("/admin/notifications/endpoint/").text
    assert "mine-hook" in page and "theirs-hook" not in page
    deliveries = staff_admin.get("/admin/notifications/delivery/").text
    assert "mine-hook" in deliveries and "theirs-hook" not in deliveries
    change = staff_admin.get(f"/admin/notifications/endpoint/{mine.pk}/change/").text
    assert mine.secret not in change and mine.secret not in page and 'name="secret"' not in change
    assert staff_admin.get(f"/admin/notifications/endpoint/{theirs.pk}/change/").status_code == 404
    assert staff_admin.get("/admin/notifications/endpoint/add/").status_code == 403


def test_an_edit_goes_through_the_service(staff_admin, tenant):
    endpoint = EndpointFactory(tenant=tenant, name="ops")
    form = {
        "name": "ops",
        "kind": "webhook",
        "url": "https://127.0.0.1/hook",  # refused by the outbound rules: shown in the form, nothing saved
        "email_role": "",
        "event_types": '["version.tampered"]',
        "active": "on",
    }
    refused = staff_admin.post(f"/admin/notifications/endpoint/{endpoint.pk}/change/", form)
    assert refused.status_code == 200 and "errornote" in refused.text
    endpoint.refresh_from_db()
    assert endpoint.event_types == []
    form["url"] = "https://hooks.example.com/ops"
    saved = staff_admin.post(f"/admin/notifications/endpoint/{endpoint.pk}/change/", form)
    assert saved.status_code == 302, saved.text[:2000]
    endpoint.refresh_from_db()
    assert endpoint.event_types == ["version.tampered"] and endpoint.url == "https://hooks.example.com/ops"
    assert endpoint.secret not in str([r.payload for r in records(endpoint)])
    assert records(endpoint)[-1].event_type == "WEBHOOK_ENDPOINT_CHANGED"


def test_a_delivery_shows_its_attempts_and_redelivers(staff_admin, tenant):
    delivery = DeliveryFactory(endpoint=EndpointFactory(tenant=tenant), status=DeliveryStatus.DEAD, delivered_at=None)
    delivery.attempt_log.create(number=1, started_at=timezone.now(), status_code=503, error="HTTP 503", outcome="dead")
    page = staff_admin.get(f"/admin/notifications/delivery/{delivery.pk}/change/").text
    assert "HTTP 503" in page
    response = staff_admin.post(
        "/admin/notifications/delivery/", {"action": "redeliver", "_selected_action": [str(delivery.pk)]}, follow=True
    )
    assert "Queued 1 again" in response.text
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.PENDING
