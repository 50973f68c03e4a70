from rest_framework import serializers

from audit.models import ChangeRecord


class ChangeRecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = ChangeRecord
        fields = [
            "id",
            "seq",
            "event_type",
            "target_type",
            "target_id",
            "actor",
            "created_at",
            "payload",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


class ChainVerificationSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    checked = serializers.IntegerField()
    first_broken_seq = serializers.IntegerField(allow_null=True)
