from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Append-only, hash-chained change records (SPEC §6)."""

    name = "audit"
    verbose_name = "Audit trail"
