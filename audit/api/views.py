"""Audit API: the tenant's change records (newest first, cursor pagination), chain verification, and
signed checkpoints (listed for anyone who may read the audit trail; taken by compliance and admins)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from arm.api import StrictPageSizeMixin
from arm.schema import ERRORS_READ, ERRORS_WRITE
from audit.api.serializers import (
    ChainVerificationSerializer,
    ChangeRecordSerializer,
    InclusionProofSerializer,
    ProofQuerySerializer,
    SignedCheckpointSerializer,
    VerifyQuerySerializer,
)
from audit.filtersets import ChangeRecordFilterSet
from audit.models import ChangeRecord, SignedCheckpoint
from audit.proofs import record_proof
from audit.services import checkpoint_take, verify_chain
from tenancy.choices import Role
from tenancy.permissions import require_roles
from tenancy.scoping import scoped
from tenancy.viewsets import ListMixin, TenantViewSet


class SeqCursorPagination(StrictPageSizeMixin, CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = "-seq"


@extend_schema_view(
    list=extend_schema(responses={200: ChangeRecordSerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: ChangeRecordSerializer, **ERRORS_READ}),
)
class ChangeRecordViewSet(ListMixin, mixins.RetrieveModelMixin, TenantViewSet):
    queryset = ChangeRecord.objects.all()
    serializer_class = ChangeRecordSerializer
    filterset_class = ChangeRecordFilterSet
    pagination_class = SeqCursorPagination

    def roles_for(self, request):
        if self.action == "checkpoints" and request.method == "POST":
            return (Role.COMPLIANCE,)  # and admins, who hold every member role
        return super().roles_for(request)

    @extend_schema(
        responses={200: ChainVerificationSerializer, **ERRORS_READ},
        filters=False,
        parameters=[
            OpenApiParameter(
                "full",
                OpenApiTypes.BOOL,
                description="Recompute from genesis instead of from the newest checkpoint, and confirm every "
                "checkpoint (cost grows with the whole chain). Compliance and admin only.",
            )
        ],
    )
    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def verify(self, request):
        """Verify the tenant's hash chain up to its head as read when the call starts; name the first broken
        record. Incremental from the newest checkpoint (left by the previous successful verification)
        unless ``full=true``. Checkpoints are a performance device: ``full=true`` re-verifies from genesis."""
        query = VerifyQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        full = query.validated_data["full"]
        if full:
            require_roles(self.actor, [Role.COMPLIANCE], "A full verification (full=true)")
        result = verify_chain(self.tenant, full=full)
        return Response(ChainVerificationSerializer(result.as_dict()).data)

    @extend_schema(
        methods=["GET"],
        request=None,
        responses={200: SignedCheckpointSerializer(many=True), **ERRORS_READ},
        filters=False,
        description="The tenant's signed checkpoints, newest first (cursor pagination).",
    )
    @extend_schema(
        methods=["POST"],
        request=None,
        responses={200: SignedCheckpointSerializer, 201: SignedCheckpointSerializer, **ERRORS_WRITE},
        description="Sign the chain head now (201), or answer the checkpoint of a head that has not moved "
        "(200). Reads every record hash of the tenant (seconds at a million records); compliance and admin. "
        "409 chain_broken when the chain does not extend the previous checkpoint, 409 "
        "signing_not_configured without a signing key.",
    )
    @action(detail=False, methods=["get", "post"], filterset_class=None)
    def checkpoints(self, request):
        """Signed checkpoints (``audit.signing``): GET lists them, POST takes one at the head."""
        if request.method == "POST":
            taken = checkpoint_take(self.tenant)
            data = SignedCheckpointSerializer(taken.checkpoint.document(self.tenant.slug)).data
            return Response(data, status=201 if taken.created else 200)
        page = self.paginate_queryset(scoped(SignedCheckpoint.objects.order_by("-seq"), self.tenant))
        data = [checkpoint.document(self.tenant.slug) for checkpoint in page]
        return self.get_paginated_response(SignedCheckpointSerializer(data, many=True).data)

    @extend_schema(
        responses={200: InclusionProofSerializer, **ERRORS_READ, 409: ERRORS_WRITE[409]},
        filters=False,
        parameters=[ProofQuerySerializer],
        description="Prove that this record is part of a signed checkpoint without the rest of the chain: the "
        "record, the checkpoint and the RFC 6962 audit path from the record's hash to the checkpoint's Merkle "
        "root. Check it offline with `python audit/merkle.py PROOF.json --public-keys KEYS.json`. Reads the "
        "tenant's record hashes up to the checkpoint once. 409 no_checkpoint when no signed checkpoint covers "
        "the record yet (or the one named precedes it), unknown_checkpoint when none is at that seq, "
        "chain_broken when the database no longer leads to the signed root.",
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def proof(self, request, pk=None):
        """An inclusion proof of one record in a signed checkpoint (``audit.proofs``)."""
        query = ProofQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        document = record_proof(
            record=self.get_object(),
            tenant_slug=self.tenant.slug,
            checkpoint_seq=query.validated_data.get("checkpoint"),
        )
        return Response(InclusionProofSerializer(document).data)
