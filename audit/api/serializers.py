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
    ok = serializers.BooleanField(help_text="Every record from_seq..to_seq holds (and the head and checkpoints).")
    checked = serializers.IntegerField(
        help_text="Records recomputed by this call (before the first broken one when ok is false)."
    )
    first_broken_seq = serializers.IntegerField(
        allow_null=True,
        help_text="The first record that does not hold: changed, missing (a gap or a cut tail), or not "
        "matching its checkpoint. Null when ok.",
    )
    from_seq = serializers.IntegerField(
        help_text="The first record recomputed: 1 from genesis, else the newest checkpoint (whose record must "
        "still carry the checkpoint's hash)."
    )
    to_seq = serializers.IntegerField(
        help_text="The chain head read when the verification started; records appended after it are out of "
        "range. The range is empty when to_seq < from_seq."
    )
    full = serializers.BooleanField(
        help_text="Recomputed from genesis (asked for with full=true, or no checkpoint yet), confirming every "
        "checkpoint; false when incremental from the checkpoint at from_seq."
    )
    reason = serializers.CharField(allow_blank=True, help_text="Why first_broken_seq does not hold; empty when ok.")


class VerifyQuerySerializer(serializers.Serializer):
    full = serializers.BooleanField(default=False)
