"""The notifications API: endpoints (CRUD, rotate-secret, test) and the delivery log (filters, redeliver),
tenant admins only; a secret is shown once; another tenant's rows are 404."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.choices import DeliveryStatus
from notifications.models import Delivery, Endpoint
from tests.conftest import assert_constant_queries
from tests.helpers import assert_error, assert_isolated, assert_post_isolated, records
from tests.notifications.factories import DeliveryFactory, EndpointFactory, EventFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = "/api/v1/notification-endpoints/"
DELIVERIES = "/api/v1/notification-deliveries/"
HOOK = {"name": "ci-approvals", "url": "https://ci.example.com/arm-hook", "event_types": ["approval.requested"]}


def test_admin_creates_a_webhook_and_sees_its_secret_once(admin_member):
    created = admin_member.client.post(ENDPOINTS, HOOK, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["kind"] == "webhook"
    assert "no-store" in created["Cache-Control"]
    assert body["event_types"] == ["approval.requested"] and body["last_delivery"] is None
    detail = admin_member.client.get(f"{ENDPOINTS}{body['id']}/").json()
    listed = admin_member.client.get(ENDPOINTS).json()["results"]
    assert "secret" not in detail and all("secret" not in row for row in listed)
    assert body["secret"] not in str(detail) + str(listed)
    # the change record says an endpoint was created, never its secret
    (record,) = records(Endpoint.objects.get(pk=body["id"]))
    assert body["secret"] not in str(record.payload)


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "compliance"])
def test_every_other_role_is_refused(cast, role):
    client = cast[role].client
    assert_error(client.get(ENDPOINTS), 403, "role_required")
    assert_error(client.post(ENDPOINTS, HOOK, format="json"), 403, "role_required")
    assert_error(client.get(DELIVERIES), 403, "role_required")


def test_a_runtime_key_is_refused(runtime_key, tenant):
    _, client = runtime_key
    endpoint = EndpointFactory(tenant=tenant)
    assert_error(client.get(ENDPOINTS), 403, "role_required")
    assert_error(client.post(f"{ENDPOINTS}{endpoint.pk}/test/", format="json"), 403, "role_required")


def test_another_tenants_endpoints_and_deliveries_are_not_found(outsider, tenant):
    endpoint = EndpointFactory(tenant=tenant)
    delivery = DeliveryFactory(endpoint=endpoint)
    assert_isolated(outsider.client, f"{ENDPOINTS}{endpoint.pk}/", write_methods=("patch", "delete"))
    assert_post_isolated(outsider.client, f"{ENDPOINTS}{endpoint.pk}/rotate-secret/")
    assert_post_isolated(outsider.client, f"{ENDPOINTS}{endpoint.pk}/test/")
    assert_isolated(outsider.client, f"{DELIVERIES}{delivery.pk}/", write_methods=())
    assert_post_isolated(outsider.client, f"{DELIVERIES}{delivery.pk}/redeliver/")
    # nor do they show in the other tenant's lists, even asked for by id
    assert outsider.client.get(ENDPOINTS).json()["results"] == []
    assert outsider.client.get(f"{DELIVERIES}?endpoint={endpoint.pk}").json()["results"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "no-url"}, "url"),
        ({"name": "bad-type", "url": "https://x.example.com/", "event_types": ["approval.granted"]}, "event_types"),
        ({"name": "loopback", "url": "https://127.0.0.1/hook"}, "url"),
    ],
)
def test_invalid_endpoints_are_refused_by_field(admin_member, body, field):
    response = admin_member.client.post(ENDPOINTS, body, format="json")
    data = assert_error(response, 400, "validation_error")
    assert field in data["errors"], data
    assert not Endpoint.objects.exists()


def test_a_name_already_taken_is_a_conflict(admin_member, tenant):
    EndpointFactory(tenant=tenant, name="ci-approvals")
    response = admin_member.client.post(ENDPOINTS, HOOK, format="json")
    assert response.status_code in (400, 409), response.json()
    assert Endpoint.objects.filter(tenant=tenant).count() == 1


def test_an_email_endpoint_mails_approvers_by_default(admin_member):
    # one shape per kind: an email endpoint keeps no URL (notifications.services._normalize)
    body = {"name": "approvers", "kind": "email", "url": "https://x.example.com/"}
    response = admin_member.client.post(ENDPOINTS, body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["email_role"] == "approver" and response.json()["url"] == ""


def test_patch_changes_filters_and_pauses(admin_member, tenant):
    endpoint = EndpointFactory(tenant=tenant)
    body = {"event_types": ["version.tampered", "instance.quarantined"], "active": False}
    response = admin_member.client.patch(f"{ENDPOINTS}{endpoint.pk}/", body, format="json")
    assert response.status_code == 200, response.json()
    endpoint.refresh_from_db()
    assert endpoint.event_types == body["event_types"] and endpoint.active is False
    assert "secret" not in response.json()


def test_delete_removes_the_endpoint_and_its_log(admin_member, tenant):
    delivery = DeliveryFactory(endpoint=EndpointFactory(tenant=tenant))
    assert admin_member.client.delete(f"{ENDPOINTS}{delivery.endpoint_id}/").status_code == 204
    assert not Endpoint.objects.exists() and not Delivery.objects.exists()


def test_rotating_shows_a_new_secret_once_and_keeps_the_old_one_signing(admin_member, tenant):
    endpoint = EndpointFactory(tenant=tenant)
    old = endpoint.secret
    response = admin_member.client.post(f"{ENDPOINTS}{endpoint.pk}/rotate-secret/", format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != old
    endpoint.refresh_from_db()
    assert endpoint.secret == body["secret"] and endpoint.previous_secret == old
    overlap = endpoint.previous_secret_expires_at - timezone.now()
    assert timedelta(hours=23) < overlap <= timedelta(hours=24)
    assert body["previous_secret_expires_at"] is not None
    assert old not in str(records(endpoint)[-1].payload) and body["secret"] not in str(records(endpoint)[-1].payload)


def test_send_a_test_event_queues_one_delivery_to_that_endpoint(admin_member, tenant):
    endpoint = EndpointFactory(tenant=tenant, event_types=["version.tampered"])
    other = EndpointFactory(tenant=tenant)
    response = admin_member.client.post(f"{ENDPOINTS}{endpoint.pk}/test/", format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["endpoint"] == str(endpoint.pk) and body["event"]["type"] == "arm.test"
    assert body["status"] == DeliveryStatus.PENDING and body["event"]["id"].startswith("msg_")
    assert not Delivery.objects.filter(endpoint=other).exists()


def test_the_delivery_log_filters_by_endpoint_status_and_type(admin_member, tenant):
    first, second = EndpointFactory(tenant=tenant), EndpointFactory(tenant=tenant)
    ok = DeliveryFactory(endpoint=first)
    dead = DeliveryFactory(
        endpoint=first,
        status=DeliveryStatus.DEAD,
        delivered_at=None,
        last_status_code=500,
        last_error="HTTP 500",
        event=EventFactory(tenant=tenant, type="version.tampered"),
    )
    theirs = DeliveryFactory(endpoint=second)

    def listed(query):
        response = admin_member.client.get(f"{DELIVERIES}?{query}")
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert set(listed(f"endpoint={first.pk}")) == {str(ok.pk), str(dead.pk)}
    assert listed(f"endpoint={first.pk}&status=dead") == [str(dead.pk)]
    assert listed("event_type=version.tampered") == [str(dead.pk)]
    assert str(theirs.pk) in listed("status=succeeded")
    assert_error(admin_member.client.get(f"{DELIVERIES}?status=exploded"), 400, "validation_error")
    assert_error(admin_member.client.get(f"{DELIVERIES}?endpoint=nope"), 400, "validation_error")


def test_a_delivery_shows_its_attempts(admin_member, tenant):
    delivery = DeliveryFactory(endpoint=EndpointFactory(tenant=tenant))
    delivery.attempt_log.create(
        number=1, started_at=timezone.now(), latency_ms=42, status_code=200, outcome="succeeded"
    )
    body = admin_member.client.get(f"{DELIVERIES}{delivery.pk}/").json()
    assert [a["status_code"] for a in body["attempt_log"]] == [200]


def test_redeliver_queues_a_dead_delivery_again(admin_member, tenant):
    delivery = DeliveryFactory(
        endpoint=EndpointFactory(tenant=tenant), status=DeliveryStatus.DEAD, delivered_at=None, attempts=8
    )
    response = admin_member.client.post(f"{DELIVERIES}{delivery.pk}/redeliver/", format="json")
    assert response.status_code == 200, response.json()
    delivery.refresh_from_db()
    assert delivery.status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at <= timezone.now()
    assert response.json()["event"]["id"] == delivery.event.webhook_id  # the same webhook-id


def test_lists_run_a_constant_number_of_queries(admin_member, tenant, request):
    def make(n):
        for _ in range(n):
            DeliveryFactory(endpoint=EndpointFactory(tenant=tenant))

    assert_constant_queries(make, lambda: admin_member.client.get(f"{ENDPOINTS}?page_size=1000"), small=3, large=30)
    assert_constant_queries(make, lambda: admin_member.client.get(f"{DELIVERIES}?page_size=1000"), small=3, large=30)
