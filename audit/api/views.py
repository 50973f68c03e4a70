"""Audit API: the tenant's change records (newest first, cursor pagination) and chain verification."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from arm.api import StrictPageSizeMixin
from arm.schema import ERRORS_READ
from arm.viewsets import TenantViewSet
from audit.api.serializers import ChainVerificationSerializer, ChangeRecordSerializer
from audit.filtersets import ChangeRecordFilterSet
from audit.models import ChangeRecord
from audit.services import verify_chain


class SeqCursorPagination(StrictPageSizeMixin, CursorPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = "-seq"


@extend_schema_view(
    list=extend_schema(responses={200: ChangeRecordSerializer(many=True), **ERRORS_READ}),
    retrieve=extend_schema(responses={200: ChangeRecordSerializer, **ERRORS_READ}),
)
class ChangeRecordViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    queryset = ChangeRecord.objects.all()
    serializer_class = ChangeRecordSerializer
    filterset_class = ChangeRecordFilterSet
    pagination_class = SeqCursorPagination

    @extend_schema(responses={200: ChainVerificationSerializer, **ERRORS_READ}, filters=False)
    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def verify(self, request):
        """Recompute the tenant's hash chain; name the first broken record."""
        return Response(verify_chain(self.tenant).as_dict())
