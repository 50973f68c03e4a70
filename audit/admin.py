from django.contrib import admin

from arm.admin_mixins import ReadOnlyAdmin
from audit.models import ChangeRecord


@admin.register(ChangeRecord)
class ChangeRecordAdmin(ReadOnlyAdmin):
    """Read-only: append-only in the database too."""

    list_display = ["seq", "tenant", "event_type", "target_type", "target_id", "actor", "created_at"]
    list_filter = ["tenant", "event_type", "target_type"]
    search_fields = ["target_id", "actor"]
    ordering = ["tenant", "-seq"]
