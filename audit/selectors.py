"""Audit reads shared by the UI and API."""

from audit.models import ChangeRecord


def object_history(obj, limit: int = 25) -> list[ChangeRecord]:
    """The newest change records about one domain object (scoped to the object's own tenant; served by
    the (tenant, target_type, target_id) index)."""
    return list(
        ChangeRecord.objects.filter(
            tenant_id=obj.tenant_id, target_type=obj.__class__.__name__, target_id=str(obj.pk)
        ).order_by("-seq")[:limit]
    )
