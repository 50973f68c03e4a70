"""Approval API: list and read requests, approve or deny them, withdraw one's own, wait for a decision. Reads
write nothing: a PENDING request past its deadline reads (and filters) as EXPIRED; the expiry itself is written
by ``manage.py expire_approvals``, by a decision (409 ``expired``) and by an evaluation naming it."""

from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from approvals.api.serializers import ApprovalSerializer, DecideSerializer, WaitQuerySerializer
from approvals.choices import ApprovalStatus
from approvals.filtersets import ApprovalFilterSet
from approvals.models import ApprovalRequest
from approvals.selectors import approval_to_decide, approvals_visible_to
from approvals.services import DECIDER_ROLES, approval_decide, approval_withdraw
from approvals.waiting import WAIT_HEADER
from arm.api import error_body
from arm.schema import ERRORS_READ, ERRORS_WRITE, ErrorSerializer
from tenancy.choices import READ_ROLES, Role
from tenancy.permissions import actor_principal
from tenancy.viewsets import ListMixin, TenantViewSet

WAIT_UNAVAILABLE_RETRY_AFTER_SECONDS = 2


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
    action_roles = {"approve": DECIDER_ROLES, "deny": DECIDER_ROLES, "withdraw": (*READ_ROLES, Role.RUNTIME)}

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
        approval.decider_principal = actor_principal(self.actor)
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

    @extend_schema(request=DecideSerializer, responses={200: ApprovalSerializer, **ERRORS_WRITE})
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        """Withdraw a PENDING request this runtime opened (``approvals.services.approval_withdraw``)."""
        approval = self.get_object()
        approval.tenant = self.tenant
        serializer = DecideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        approval = approval_withdraw(approval=approval, note=serializer.validated_data["note"], actor=self.actor)
        approval.decider_principal = actor_principal(self.actor)
        return Response(ApprovalSerializer(approval).data)

    @extend_schema(
        parameters=[
            WaitQuerySerializer,
            OpenApiParameter(
                WAIT_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[200],
                enum=["decided", "timeout"],
                description="decided: the approval is no longer PENDING; timeout: still PENDING after the timeout.",
            ),
        ],
        responses={
            200: OpenApiResponse(ApprovalSerializer, description=f"The approval as it is now (header {WAIT_HEADER})."),
            **ERRORS_READ,
            503: OpenApiResponse(
                ErrorSerializer,
                description="too_many_waiters: this wait server holds its maximum of waits; wait_unavailable: "
                "this server cannot hold waits (send the route to the wait server); database_busy, "
                "database_unavailable. Retry after Retry-After.",
            ),
        },
    )
    @action(detail=True, methods=["get"])
    def wait(self, request, pk=None):
        """Long-poll for a decision. Under the wait server (``approvals.api.wait``) a PENDING approval's
        deadline goes back to it (``request.arm_wait``) with the answer for a timeout; it waits without a
        thread or a connection, and when woken calls this action once more for the final answer. A server that
        cannot wait (gunicorn's synchronous workers, runserver) answers 503 ``wait_unavailable`` instead of
        holding a worker for up to a minute."""
        query = WaitQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        timeout = query.validated_data["timeout"]
        approval = self.get_object()
        now = timezone.now()
        deferral = getattr(request._request, "arm_wait", None)
        if approval.as_of(now).status != ApprovalStatus.PENDING:
            outcome = "decided"
        elif timeout == 0 or (deferral is not None and deferral.final):
            outcome = "timeout"
        elif deferral is None:
            response = Response(
                error_body(
                    "wait_unavailable",
                    "This server does not hold waits. Send GET /api/v1/approvals/{id}/wait/ to ARM's wait server "
                    "(make serve runs it beside gunicorn; see docs/runtime-integration.md), or poll "
                    "GET /api/v1/approvals/{id}/.",
                ),
                status=503,
            )
            response["Retry-After"] = str(WAIT_UNAVAILABLE_RETRY_AFTER_SECONDS)
            return response
        else:
            # The answer at the timeout is this one (nothing changed unless a wake-up says so); at the expiry,
            # if it comes first, it is read again (then EXPIRED).
            deferral.defer(now, timeout, approval.expires_at)
            outcome = "timeout"
        response = Response(ApprovalSerializer(approval, context={"now": now}).data)
        response[WAIT_HEADER] = outcome
        return response
