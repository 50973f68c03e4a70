"""Notifications REST API (tenant admins only, every method; other roles and runtime keys 403): endpoints
(CRUD, ``rotate-secret``, ``test``) and the deliveries log (filtered by endpoint, status and event type,
newest first) with ``redeliver``. Views resolve tenant-scoped objects and call ``notifications.services``;
the rules live there and in the model."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from arm.api import NewestFirstCursorPagination
from arm.schema import ERRORS_READ, ERRORS_WRITE
from notifications import services
from notifications.api.serializers import (
    DeliveryDetailSerializer,
    DeliverySerializer,
    EndpointSecretSerializer,
    EndpointSerializer,
)
from notifications.filtersets import DeliveryFilterSet, EndpointFilterSet
from notifications.models import Delivery, Endpoint
from notifications.views import endpoints_with_last_delivery
from tenancy.choices import Role
from tenancy.viewsets import ListMixin, TenantViewSet

ADMIN = (Role.ADMIN,)


@extend_schema_view(
    list=extend_schema(responses={200: EndpointSerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: EndpointSerializer, **ERRORS_READ}),
    create=extend_schema(request=EndpointSerializer, responses={201: EndpointSecretSerializer, **ERRORS_WRITE}),
    partial_update=extend_schema(request=EndpointSerializer, responses={200: EndpointSerializer, **ERRORS_WRITE}),
    destroy=extend_schema(responses={204: None, **ERRORS_WRITE}),
)
class EndpointViewSet(ListMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The tenant's notification endpoints (webhook, Slack, email) with their event filters and last
    delivery. Created with a signing secret shown once in the answer; ``rotate-secret`` makes a new one
    (the previous one keeps signing for 24 hours); ``test`` queues an ``arm.test`` event for it. Deleting an
    endpoint deletes its delivery log."""

    queryset = Endpoint.objects.all()
    serializer_class = EndpointSerializer
    filterset_class = EndpointFilterSet
    read_roles = ADMIN
    write_roles = ADMIN
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return endpoints_with_last_delivery(super().get_queryset()).order_by("name")

    def _answer(self, endpoint, *, secret=None, http_status=status.HTTP_200_OK):
        endpoint = self.get_queryset().get(pk=endpoint.pk)  # with its last delivery
        if secret is None:
            return Response(EndpointSerializer(endpoint).data, status=http_status)
        body = EndpointSecretSerializer(endpoint).data
        body["secret"] = secret
        response = Response(body, status=http_status)
        response["Cache-Control"] = "no-store"
        return response

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = services.endpoint_create(tenant=self.tenant, actor=self.actor, **serializer.validated_data)
        return self._answer(endpoint, secret=secret, http_status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        endpoint = self.get_object()
        serializer = self.get_serializer(endpoint, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = services.endpoint_update(endpoint=endpoint, actor=self.actor, **serializer.validated_data)
        return self._answer(endpoint)

    def destroy(self, request, *args, **kwargs):
        services.endpoint_delete(endpoint=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: EndpointSecretSerializer, **ERRORS_WRITE})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new signing secret, shown in this answer only. Until ``previous_secret_expires_at`` (24 hours)
        the previous secret signs too: every request carries both signatures, so a receiver switches to the
        new secret without rejecting an event."""
        endpoint = self.get_object()
        secret = services.endpoint_rotate_secret(endpoint=endpoint, actor=self.actor)
        return self._answer(endpoint, secret=secret)

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(DeliverySerializer, description="The test event's delivery, queued."),
            **ERRORS_WRITE,
        },
    )
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Queue an ``arm.test`` event for this endpoint only (also a paused one); the worker sends it like
        any event. The answer is its delivery: follow it in ``GET /api/v1/notification-deliveries/{id}/``."""
        endpoint = self.get_object()
        event = services.send_test_event(endpoint=endpoint, actor=self.actor)
        delivery = Delivery.objects.select_related("event").get(event=event, endpoint=endpoint)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DeliveryPagination(NewestFirstCursorPagination):
    ordering = ("-created_at", "-id")  # the (endpoint, -created_at) index for one endpoint's log


@extend_schema_view(
    list=extend_schema(responses={200: DeliverySerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: DeliveryDetailSerializer, **ERRORS_READ}),
)
class DeliveryViewSet(ListMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The delivery log: one row per event and endpoint, newest first (cursor pagination), filtered by
    ``endpoint``, ``status`` and ``event_type``; a delivery's detail lists every attempt. ``redeliver``
    queues one again (same event, same ``webhook-id``: receivers deduplicate)."""

    queryset = Delivery.objects.select_related("event")
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilterSet
    pagination_class = DeliveryPagination
    read_roles = ADMIN
    write_roles = ADMIN
    http_method_names = ["get", "post", "head", "options"]

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            return queryset.prefetch_related("attempt_log")
        return queryset

    def get_serializer_class(self):
        return DeliveryDetailSerializer if self.action == "retrieve" else DeliverySerializer

    @extend_schema(request=None, responses={200: DeliverySerializer, **ERRORS_WRITE})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        """Send this delivery again, now: a new round of attempts (a dead one too), the same ``webhook-id``.
        One already queued or being sent is a 409 ``already_queued``."""
        delivery = services.redeliver(delivery=self.get_object(), actor=self.actor)
        return Response(DeliverySerializer(delivery).data)
