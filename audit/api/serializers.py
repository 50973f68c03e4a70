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


class SignedCheckpointSerializer(serializers.Serializer):
    """A signed checkpoint in its JSON form (``audit.signing``): verifiable with the public keys at
    ``/.well-known/arm-audit-keys.json``; ``tenant_slug`` is informational, not signed."""

    type = serializers.CharField(help_text='Always "checkpoint".')
    format = serializers.CharField(help_text='Always "arm-audit-checkpoint".')
    version = serializers.IntegerField(help_text="Format version (1).")
    tenant = serializers.UUIDField()
    tenant_slug = serializers.CharField()
    seq = serializers.IntegerField(help_text="The chain had this many records; the last is record seq.")
    hash = serializers.CharField(help_text="Chain hash of record seq (64 zeros for seq 0).")
    root = serializers.CharField(help_text="RFC 6962 Merkle root over the hashes of records 1..seq.")
    time = serializers.CharField(help_text="When it was signed: ISO 8601 UTC with microseconds, as signed.")
    key_id = serializers.CharField(help_text="First 16 hex of SHA-256 over the raw Ed25519 public key.")
    signature = serializers.CharField(help_text="Base64 Ed25519 signature of the checkpoint body.")


class ProofQuerySerializer(serializers.Serializer):
    checkpoint = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="Prove against the signed checkpoint at this seq (default: the newest).",
    )


class ProofRecordSerializer(serializers.Serializer):
    tenant = serializers.UUIDField()
    seq = serializers.IntegerField()
    event_type = serializers.CharField()
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    actor = serializers.CharField()
    created_at = serializers.CharField(help_text="ISO 8601, exactly as hashed.")
    payload = serializers.JSONField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField()


class InclusionProofSerializer(serializers.Serializer):
    record = ProofRecordSerializer(help_text="The record with every hashed field, as exports write it.")
    leaf_index = serializers.IntegerField(help_text="seq - 1: the record's leaf in the checkpoint's tree.")
    tree_size = serializers.IntegerField(help_text="The checkpoint's seq: the tree's number of leaves.")
    audit_path = serializers.ListField(
        child=serializers.CharField(),
        help_text="RFC 6962 audit path, hex, from the leaf up: sibling subtree roots leading to the checkpoint's "
        "root (leaf = SHA-256(0x00 || record hash bytes), node = SHA-256(0x01 || left || right)).",
    )
    checkpoint = SignedCheckpointSerializer()
