from django.contrib import admin

from audit.models import ChangeRecord, SignedCheckpoint
from tenancy.admin_mixins import ReadOnlyAdmin


@admin.register(ChangeRecord)
class ChangeRecordAdmin(ReadOnlyAdmin):
    """Read-only: append-only in the database too."""

    list_display = ["seq", "tenant", "event_type", "target_type", "target_id", "actor", "created_at"]
    list_filter = ["tenant", "event_type", "target_type"]
    search_fields = ["target_id", "actor"]
    ordering = ["tenant", "-seq"]


@admin.register(SignedCheckpoint)
class SignedCheckpointAdmin(ReadOnlyAdmin):
    """Read-only: append-only in the database, and signed with a key the admin does not hold."""

    list_display = ["seq", "tenant", "signed_at", "key_id", "hash", "root"]
    list_filter = ["tenant", "key_id"]
    ordering = ["tenant", "-seq"]
