"""Approval API: list and read requests, approve or deny them. Reads write nothing: a PENDING request past
its deadline reads (and filters) as EXPIRED; the expiry itself is written by ``manage.py
expire_approvals``, by a decision (409 ``expired``) and by an evaluation naming it."""

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from approvals.api.serializers import ApprovalSerializer, DecideSerializer
from approvals.filtersets import ApprovalFilterSet
from approvals.models import ApprovalRequest
from approvals.selectors import approval_to_decide, approvals_visible_to
from approvals.services import DECIDER_ROLES, approval_decide
from arm.choices import READ_ROLES, Role
from arm.schema import ERRORS_READ, ERRORS_WRITE
from arm.viewsets import ListMixin, TenantViewSet


@extend_schema_view(
    list=extend_schema(responses={200: ApprovalSerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: ApprovalSerializer, **ERRORS_READ}),
)
class ApprovalViewSet(ListMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Members read every request; a runtime key reads its own (bound instance, else its requests).
    Approvers and admins decide; never the requester (four eyes)."""

    queryset = ApprovalRequest.objects.all()
    serializer_class = ApprovalSerializer
    filterset_class = ApprovalFilterSet
    read_roles = (*READ_ROLES, Role.RUNTIME)
    action_roles = {"approve": DECIDER_ROLES, "deny": DECIDER_ROLES}

    def get_queryset(self):
        return approvals_visible_to(self.actor, self.tenant)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def _decide(self, request, approve: bool):
        # The service expires it (and answers 409) if it is past due. A decider holds a read role, so the
        # requests it sees are the whole tenant's (approvals_visible_to): read with its requester's principal.
        approval = approval_to_decide(self.tenant, self.get_lookup_id())
        if approval is None:
            raise Http404
        approval.tenant = self.tenant
        serializer = DecideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        approval = approval_decide(
            approval=approval, approve=approve, note=serializer.validated_data["note"], actor=self.actor
        )
        return Response(ApprovalSerializer(approval).data)

    @extend_schema(request=DecideSerializer, responses={200: ApprovalSerializer, **ERRORS_WRITE})
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve a PENDING request: the requester's next evaluation with this approval id is ALLOWed once."""
        return self._decide(request, approve=True)

    @extend_schema(request=DecideSerializer, responses={200: ApprovalSerializer, **ERRORS_WRITE})
    @action(detail=True, methods=["post"])
    def deny(self, request, pk=None):
        return self._decide(request, approve=False)
