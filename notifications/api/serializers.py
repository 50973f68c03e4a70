"""Notifications API shapes. A signing secret appears in exactly two answers, once each: the endpoint's
creation and its rotation (``EndpointSecretSerializer``); no read ever shows it."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from arm.serializers import StrictCharField, StrictModelSerializer
from notifications import catalogue
from notifications.choices import AttemptOutcome, DeliveryStatus, EndpointKind
from notifications.models import URL_MAX_LENGTH, Delivery, DeliveryAttempt, Endpoint
from tenancy.choices import MEMBER_ROLES, Role


class LastDeliverySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    created_at = serializers.DateTimeField()
    status_code = serializers.IntegerField(allow_null=True, help_text="The receiver's last HTTP status.")


class EndpointSerializer(StrictModelSerializer):
    name = StrictCharField(max_length=200)
    kind = serializers.ChoiceField(
        choices=EndpointKind.choices,
        default=EndpointKind.WEBHOOK,
        help_text="webhook: a JSON POST signed per Standard Webhooks; slack: a Slack incoming webhook; email: "
        "mail to the tenant's active members holding email_role.",
    )
    url = StrictCharField(
        max_length=URL_MAX_LENGTH,
        required=False,
        allow_blank=True,
        default="",
        help_text="The receiver (https:// outside DEBUG; private and loopback addresses are refused unless "
        "ARM_OUTBOUND_ALLOW_PRIVATE). Empty for email.",
    )
    email_role = serializers.ChoiceField(
        choices=[(r, r) for r in MEMBER_ROLES],
        required=False,
        allow_blank=True,
        default=Role.APPROVER,
        help_text="For email: the role whose active members receive it (approver by default; blank for a webhook "
        "or Slack endpoint). An approval's requester is never mailed their own request.",
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=[(t, t) for t in catalogue.EVENT_TYPES]),
        required=False,
        default=list,
        help_text="The event types it receives; empty: every type.",
    )
    active = serializers.BooleanField(required=False, default=True, help_text="A paused endpoint receives nothing.")
    previous_secret_expires_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="After a rotation: until then the previous secret signs too (both signatures are sent).",
    )
    last_delivery = serializers.SerializerMethodField(help_text="The newest delivery to it, or null.")

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "name",
            "kind",
            "url",
            "email_role",
            "event_types",
            "active",
            "previous_secret_expires_at",
            "last_delivery",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "previous_secret_expires_at", "last_delivery", "created_at", "updated_at"]
        validators = []

    @extend_schema_field(LastDeliverySerializer(allow_null=True))
    def get_last_delivery(self, endpoint) -> dict | None:
        # Annotated by the viewset's queryset (notifications.views.endpoints_with_last_delivery).
        status = getattr(endpoint, "last_status", None)
        if status is None:
            return None
        return {"status": status, "created_at": endpoint.last_at, "status_code": endpoint.last_code}


class EndpointSecretSerializer(EndpointSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret (whsec_…). Shown in this answer only; store it now. Receivers verify the "
        "webhook-signature header with it.",
    )

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]


class EventSummarySerializer(serializers.Serializer):
    id = serializers.CharField(source="webhook_id", help_text="The webhook-id header: msg_<hex>, kept on retries.")
    type = serializers.CharField()
    created_at = serializers.DateTimeField()


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    outcome = serializers.ChoiceField(choices=AttemptOutcome.choices)

    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "latency_ms", "status_code", "error", "outcome"]


class DeliverySerializer(serializers.ModelSerializer):
    endpoint = serializers.UUIDField(source="endpoint_id", read_only=True)
    event = EventSummarySerializer(read_only=True)
    status = serializers.ChoiceField(
        choices=DeliveryStatus.choices,
        read_only=True,
        help_text="pending: not tried yet; failed: will retry at next_attempt_at; succeeded; dead: gave up.",
    )

    class Meta:
        model = Delivery
        fields = [
            "id",
            "endpoint",
            "event",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_latency_ms",
            "last_error",
            "delivered_at",
            "created_at",
        ]
        read_only_fields = fields


class DeliveryDetailSerializer(DeliverySerializer):
    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True, help_text="Every try, oldest first.")

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "attempt_log"]
        read_only_fields = fields
