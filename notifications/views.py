"""The Notifications page (tenant admins): the tenant's endpoints with their last delivery, the New and
Edit modal (``registry.views.FormModal``), a webhook's signing secret shown once after create or
rotation, "send a test event", delete, and each endpoint's delivery log with "redeliver".

Every write calls a ``notifications.services`` function (the API calls the same ones); lists run a
constant number of queries."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from arm.errors import DomainError
from arm.ui import error_message, htmx_event, non_empty, paginate
from notifications import catalogue, services
from notifications.choices import DeliveryStatus, EndpointKind
from notifications.filtersets import DeliveryFilterSet
from notifications.forms import EndpointForm
from notifications.models import Delivery, Endpoint
from registry.views import FormModal, _modal
from tenancy.choices import Role
from tenancy.pages import tenant_page
from tenancy.scoping import scoped, scoped_get

ADMIN = (Role.ADMIN,)
EVENTS_SHOWN = 3  # event-type chips per row before "+N more"


def endpoints_with_last_delivery(queryset):
    """Each endpoint with its newest delivery's status, time and response code (three subqueries of one
    query, so the list costs the same for any number of endpoints and deliveries)."""
    last = Delivery.objects.filter(endpoint_id=OuterRef("pk")).order_by("-created_at")
    return queryset.annotate(
        last_status=Subquery(last.values("status")[:1]),
        last_at=Subquery(last.values("created_at")[:1]),
        last_code=Subquery(last.values("last_status_code")[:1]),
    )


@tenant_page(roles=ADMIN)
def notifications(request):
    endpoints = list(endpoints_with_last_delivery(scoped(Endpoint.objects, request.arm_tenant)).order_by("name"))
    for endpoint in endpoints:
        endpoint.events_shown = endpoint.event_types[:EVENTS_SHOWN]
        endpoint.events_more = max(0, len(endpoint.event_types) - EVENTS_SHOWN)
    context = {"endpoints": endpoints, "event_count": len(catalogue.EVENT_TYPES)}
    if request.htmx and request.htmx.target == "notifications-body":
        return render(request, "notifications/_endpoints.html", context)
    return render(request, "notifications/notifications.html", context)


# ---------------------------------------------------------------- create, edit: the shared modal


def _create(*, tenant, actor, **data):
    endpoint, secret = services.endpoint_create(tenant=tenant, actor=actor, **data)
    endpoint.new_secret = secret  # shown once, by _created
    return endpoint


def _secret_shown(request, endpoint, secret: str, *, rotated: bool):
    """The modal (or page, without JS) showing a webhook's signing secret, the one time it is shown."""
    title = f"Secret of {endpoint.name} rotated" if rotated else f"Endpoint {endpoint.name} created"
    context = {"endpoint": endpoint, "secret": secret, "rotated": rotated, "title": title}
    response = _modal(request, "notifications/_secret.html", context, page_title=title)
    response["Cache-Control"] = "no-store"  # a secret is never cached
    return htmx_event(response, "arm:refresh") if request.htmx else response


def _created(request, endpoint):
    if endpoint.kind == EndpointKind.WEBHOOK:
        return _secret_shown(request, endpoint, endpoint.new_secret, rotated=False)
    messages.success(request, f"Endpoint {endpoint.name} created. Send it a test event from its delivery log.")
    if request.htmx:
        response = render(request, "partials/modal_closed.html", {"oob_toasts": True})
        return htmx_event(response, "arm:refresh")
    return redirect("ui:notifications")


ENDPOINTS = FormModal(
    model=Endpoint,
    form=EndpointForm,
    noun="endpoint",
    template_name="notifications/_endpoint_form.html",
    create=_create,
    update=services.endpoint_update,
    check=services.endpoint_check,
    done=("ui:notifications",),
    created=lambda e: f"Endpoint {e.name} created.",
    saved=lambda e: f"Endpoint {e.name} saved.",
    respond_created=_created,
)


@tenant_page(roles=ADMIN, methods=("GET", "POST"))
def endpoint_create(request):
    return ENDPOINTS.new(request)


@tenant_page(roles=ADMIN, methods=("GET", "POST"))
def endpoint_edit(request, pk):
    return ENDPOINTS.edit(request, pk)


# ---------------------------------------------------------------- one endpoint: its log and actions


@tenant_page(roles=ADMIN)
def endpoint_detail(request, pk):
    endpoint = scoped_get(Endpoint.objects, request.arm_tenant, pk)
    filters = non_empty(request.GET)
    filterset = DeliveryFilterSet(filters, queryset=Delivery.objects.filter(tenant=endpoint.tenant, endpoint=endpoint))
    deliveries = filterset.qs if filterset.is_valid() else Delivery.objects.none()
    page = paginate(request, deliveries.select_related("event").order_by("-created_at", "-pk"))
    context = {
        "endpoint": endpoint,
        "page": page,
        "rows": list(page.object_list),
        "filters": request.GET,
        "filter_errors": filterset.errors,
        "statuses": DeliveryStatus.choices,
        "event_types": [catalogue.TEST_EVENT, *catalogue.EVENT_TYPES],
        "filtered": bool(filters.keys() - {"page", "page_size"}),
    }
    if request.htmx and request.htmx.target == "delivery-log":
        return render(request, "notifications/_deliveries.html", context)
    return render(request, "notifications/endpoint.html", context)


def _refused(request, exc) -> None:
    messages.error(request, error_message(exc))


@tenant_page(roles=ADMIN)
@require_POST
def endpoint_rotate_secret(request, pk):
    endpoint = scoped_get(Endpoint.objects, request.arm_tenant, pk)
    try:
        secret = services.endpoint_rotate_secret(endpoint=endpoint, actor=request.arm_actor)
    except (ValidationError, DomainError) as exc:
        _refused(request, exc)
        return redirect("ui:notification_endpoint", endpoint.pk)
    endpoint.refresh_from_db()
    return _secret_shown(request, endpoint, secret, rotated=True)


@tenant_page(roles=ADMIN)
@require_POST
def endpoint_test(request, pk):
    endpoint = scoped_get(Endpoint.objects, request.arm_tenant, pk)
    try:
        services.send_test_event(endpoint=endpoint, actor=request.arm_actor)
    except (ValidationError, DomainError) as exc:
        _refused(request, exc)
    else:
        messages.success(request, f"Test event queued for {endpoint.name}: its delivery shows in the log below.")
    return redirect("ui:notification_endpoint", endpoint.pk)


@tenant_page(roles=ADMIN)
@require_POST
def endpoint_delete(request, pk):
    endpoint = scoped_get(Endpoint.objects, request.arm_tenant, pk)
    try:
        services.endpoint_delete(endpoint=endpoint, actor=request.arm_actor)
    except (ValidationError, DomainError) as exc:
        _refused(request, exc)
        return redirect("ui:notification_endpoint", endpoint.pk)
    messages.success(request, f"Endpoint {endpoint.name} deleted, with its delivery log.")
    return redirect("ui:notifications")


@tenant_page(roles=ADMIN)
@require_POST
def delivery_redeliver(request, pk):
    delivery = scoped_get(Delivery.objects.select_related("event", "endpoint"), request.arm_tenant, pk)
    try:
        services.redeliver(delivery=delivery, actor=request.arm_actor)
    except (ValidationError, DomainError) as exc:
        _refused(request, exc)
    else:
        messages.success(
            request,
            format_html(
                "{} queued again for {} (same webhook id, receivers deduplicate).",
                delivery.event.type,
                delivery.endpoint.name,
            ),
        )
    return redirect(reverse("ui:notification_endpoint", args=[delivery.endpoint_id]))
