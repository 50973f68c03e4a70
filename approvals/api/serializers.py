"""Approval API serializers (SPEC §7): requests are opened by evaluation, so they are read-only here;
deciding and withdrawing take an optional note."""

from django.utils import timezone
from rest_framework import serializers

from approvals.models import ApprovalRequest
from approvals.services import MAX_NOTE_LENGTH
from approvals.waiting import DEFAULT_WAIT_SECONDS, MAX_WAIT_SECONDS
from arm.serializers import DecimalStringField, StrictCharField, StrictSerializer


class ReasonSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class ApprovalSerializer(serializers.ModelSerializer):
    reasons = ReasonSerializer(many=True)
    estimated_cost_usd = DecimalStringField(
        max_digits=14,
        decimal_places=4,
        allow_null=True,
        help_text="The call's estimate: the approval grants calls estimated at most this (null: none, or 0).",
    )
    data_scopes = serializers.ListField(
        child=serializers.CharField(), help_text="The call's data scopes: the approval grants calls within them."
    )
    decided_by = serializers.SerializerMethodField(
        help_text='Who decided (or withdrew) it, as a person: "user:alice", or "user:alice via key:c1b3d4e5" for '
        "a key acting for alice."
    )

    class Meta:
        model = ApprovalRequest
        fields = [
            "id",
            "instance",
            "tool",
            "params",
            "params_hash",
            "estimated_cost_usd",
            "data_scopes",
            "risk",
            "reasons",
            "status",
            "requester",
            "idempotency_key",
            "requested_at",
            "expires_at",
            "decided_at",
            "decided_by",
            "note",
            "used_at",
            "withdrawn_at",
        ]
        read_only_fields = fields

    def get_decided_by(self, obj) -> str:
        return obj.decided_by_display()

    def to_representation(self, instance):
        # As of now: an overdue PENDING request reads as EXPIRED without a write (ApprovalRequest.as_of).
        return super().to_representation(instance.as_of(self.context.get("now") or timezone.now()))


class DecideSerializer(StrictSerializer):
    note = StrictCharField(
        required=False, allow_blank=True, allow_null=True, default="", max_length=MAX_NOTE_LENGTH
    )  # null is the same as no note

    def to_internal_value(self, data):
        if isinstance(data, dict):
            if "note" in data and not isinstance(data["note"], str | type(None)):
                raise serializers.ValidationError({"note": ["Must be a string."]})
            if "note" in data and data["note"] is None:
                data = {key: value for key, value in data.items() if key != "note"}
        return super().to_internal_value(data)


class WaitQuerySerializer(serializers.Serializer):
    """``GET approvals/{id}/wait/?timeout=S``: seconds, 0 to 60 (0 answers at once)."""

    timeout = serializers.FloatField(
        required=False,
        default=DEFAULT_WAIT_SECONDS,
        min_value=0,
        max_value=MAX_WAIT_SECONDS,
        help_text=f"Seconds to wait at most, 0 to {MAX_WAIT_SECONDS} (default {DEFAULT_WAIT_SECONDS}); 0 answers now.",
    )
