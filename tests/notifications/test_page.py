"""The Notifications page (tenant admins): the list with each endpoint's last delivery, the New/Edit modal,
a webhook's secret shown once after create and rotation, send a test event, delete, the delivery log with
its filters and redeliver; other roles 403, another tenant's rows 404."""

import pytest
from django.test import Client

from notifications.choices import DeliveryStatus
from notifications.models import Delivery, Endpoint
from tests.conftest import assert_constant_queries
from tests.notifications.factories import DeliveryFactory, EndpointFactory, EventFactory

pytestmark = pytest.mark.django_db

PAGE = "/settings/notifications/"
HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "modal-root"}


def signed_in(member) -> Client:
    client = Client()
    client.force_login(member.user)
    return client


@pytest.fixture
def admin(admin_member):
    return signed_in(admin_member)


def test_an_empty_page_says_what_to_do(admin):
    response = admin.get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="empty-state"' in html and "New endpoint" in html
    assert 'href="/settings/notifications/"' in html  # the sidebar links to it (admins)


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "compliance"])
def test_other_roles_are_refused(cast, role, tenant):
    client = signed_in(cast[role])
    endpoint = EndpointFactory(tenant=tenant)
    assert client.get(PAGE).status_code == 403
    assert client.get(f"{PAGE}{endpoint.pk}/").status_code == 403
    assert client.post(f"{PAGE}new/", {"name": "x", "kind": "email"}).status_code == 403
    assert client.post(f"{PAGE}{endpoint.pk}/test/").status_code == 403
    assert "/settings/notifications/" not in client.get("/approvals/").content.decode()  # no nav link
    assert not Delivery.objects.exists()


def test_creating_a_webhook_shows_its_secret_once(admin, tenant):
    body = {"name": "ci-approvals", "kind": "webhook", "url": "https://ci.example.com/hook", "active": "on"}
    body["event_types"] = ["approval.requested", "approval.expired"]
    response = admin.post(f"{PAGE}new/", body, **HTMX)
    assert response.status_code == 200
    endpoint = Endpoint.objects.get(tenant=tenant)
    html = response.content.decode()
    assert endpoint.secret in html and 'data-testid="endpoint-secret"' in html
    assert "no-store" in response["Cache-Control"] and "arm:refresh" in response["HX-Trigger-After-Swap"]
    assert endpoint.event_types == ["approval.requested", "approval.expired"] and endpoint.active
    # never again: not on the list, the endpoint page, or its edit modal
    for url in (PAGE, f"{PAGE}{endpoint.pk}/", f"{PAGE}{endpoint.pk}/edit/"):
        assert endpoint.secret not in admin.get(url).content.decode(), url
    listed = admin.get(PAGE).content.decode()
    assert "ci-approvals" in listed and "approval.expired" in listed and "none yet" in listed


def test_without_javascript_the_secret_is_shown_on_a_page(admin, tenant):
    body = {"name": "plain", "kind": "webhook", "url": "https://ci.example.com/hook", "active": "on"}
    response = admin.post(f"{PAGE}new/", body)
    assert response.status_code == 200
    assert Endpoint.objects.get(tenant=tenant).secret in response.content.decode()


def test_an_email_endpoint_closes_the_modal_with_a_toast(admin, tenant):
    response = admin.post(f"{PAGE}new/", {"name": "approvers", "kind": "email", "email_role": "approver"}, **HTMX)
    assert response.status_code == 200
    endpoint = Endpoint.objects.get(tenant=tenant)
    assert endpoint.kind == "email" and endpoint.email_role == "approver" and endpoint.url == ""
    assert endpoint.secret not in response.content.decode()
    assert "Endpoint approvers created" in response.content.decode()


def test_every_error_is_shown_in_the_form_and_nothing_is_made(admin, tenant):
    EndpointFactory(tenant=tenant, name="taken")
    body = {"name": "taken", "kind": "webhook", "url": "https://127.0.0.1/hook"}
    response = admin.post(f"{PAGE}new/", body, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and 'data-testid="endpoint-form"' in html
    assert 'data-field-error="url"' in html and 'data-field-error="name"' in html, html
    assert Endpoint.objects.filter(tenant=tenant).count() == 1


def test_editing_changes_the_filters_and_pauses(admin, tenant):
    endpoint = EndpointFactory(tenant=tenant, name="ops", event_types=["version.tampered"])
    form = admin.get(f"{PAGE}{endpoint.pk}/edit/", **HTMX).content.decode()
    assert 'value="version.tampered"' in form and "checked" in form and endpoint.url in form
    body = {"name": "ops", "kind": "webhook", "url": endpoint.url, "event_types": ["instance.quarantined"]}
    response = admin.post(f"{PAGE}{endpoint.pk}/edit/", body, **HTMX)
    assert response.status_code == 200 and "arm:refresh" in response["HX-Trigger-After-Swap"]
    endpoint.refresh_from_db()
    assert endpoint.event_types == ["instance.quarantined"] and endpoint.active is False


def test_rotating_shows_the_new_secret_and_the_overlap(admin, tenant):
    endpoint = EndpointFactory(tenant=tenant)
    old = endpoint.secret
    response = admin.post(f"{PAGE}{endpoint.pk}/rotate/", **HTMX)
    endpoint.refresh_from_db()
    html = response.content.decode()
    assert endpoint.secret != old and endpoint.secret in html and old not in html
    assert 'data-testid="rotation-overlap"' in html and "no-store" in response["Cache-Control"]


def test_send_a_test_event_lands_in_the_delivery_log(admin, tenant):
    endpoint = EndpointFactory(tenant=tenant)
    response = admin.post(f"{PAGE}{endpoint.pk}/test/", follow=True)
    html = response.content.decode()
    assert response.redirect_chain[-1][0] == f"{PAGE}{endpoint.pk}/"
    assert "Test event queued" in html and 'data-testid="delivery-row"' in html and "arm.test" in html
    assert Delivery.objects.get(endpoint=endpoint).event.type == "arm.test"


def test_the_log_shows_each_delivery_and_filters(admin, tenant):
    endpoint = EndpointFactory(tenant=tenant)
    DeliveryFactory(endpoint=endpoint)
    DeliveryFactory(
        endpoint=endpoint,
        status=DeliveryStatus.DEAD,
        delivered_at=None,
        last_status_code=503,
        last_error="HTTP 503 from the receiver",
        event=EventFactory(tenant=tenant, type="version.tampered"),
    )
    html = admin.get(f"{PAGE}{endpoint.pk}/").content.decode()
    assert html.count('data-testid="delivery-row"') == 2 and "HTTP 503 from the receiver" in html
    dead = admin.get(f"{PAGE}{endpoint.pk}/?status=dead").content.decode()
    assert dead.count('data-testid="delivery-row"') == 1 and "version.tampered" in dead
    none = admin.get(f"{PAGE}{endpoint.pk}/?event_type=budget.threshold_crossed").content.decode()
    assert 'data-testid="delivery-row"' not in none and "No delivery matches these filters" in none


def test_redeliver_queues_it_again(admin, tenant):
    delivery = DeliveryFactory(endpoint=EndpointFactory(tenant=tenant), status=DeliveryStatus.DEAD, delivered_at=None)
    response = admin.post(f"{PAGE}deliveries/{delivery.pk}/redeliver/", follow=True)
    assert "queued again" in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    # a second one while it waits is refused, told, not an error page
    again = admin.post(f"{PAGE}deliveries/{delivery.pk}/redeliver/", follow=True)
    assert again.status_code == 200 and "already queued" in again.content.decode()


def test_delete_removes_it(admin, tenant):
    endpoint = EndpointFactory(tenant=tenant, name="old-hook")
    response = admin.post(f"{PAGE}{endpoint.pk}/delete/", follow=True)
    assert "old-hook deleted" in response.content.decode()
    assert not Endpoint.objects.exists()


def test_another_tenants_endpoints_are_not_found(outsider, tenant):
    client = signed_in(outsider)
    endpoint = EndpointFactory(tenant=tenant)
    delivery = DeliveryFactory(endpoint=endpoint, status=DeliveryStatus.DEAD, delivered_at=None)
    for url in (f"{PAGE}{endpoint.pk}/", f"{PAGE}{endpoint.pk}/edit/"):
        assert client.get(url).status_code == 404, url
    for url in ("edit", "rotate", "test", "delete"):
        assert client.post(f"{PAGE}{endpoint.pk}/{url}/").status_code == 404, url
    assert client.post(f"{PAGE}deliveries/{delivery.pk}/redeliver/").status_code == 404
    endpoint.refresh_from_db()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD and Delivery.objects.count() == 1


def test_the_lists_run_a_constant_number_of_queries(admin, tenant, request):
    endpoint = EndpointFactory(tenant=tenant)

    def make(n):
        for _ in range(n):
            DeliveryFactory(endpoint=EndpointFactory(tenant=tenant))
            DeliveryFactory(endpoint=endpoint)

    assert_constant_queries(make, lambda: admin.get(PAGE), small=3, large=30)
    assert_constant_queries(make, lambda: admin.get(f"{PAGE}{endpoint.pk}/"), small=3, large=30)
