from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Append-only, hash-chained change records (SPEC §6)."""

    name = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        # Every save of a model in audit.coverage.RECORDED writes its change record from here on.
        from audit import accounts, checks, recording  # noqa: F401 - registers the coverage checks

        recording.connect()
        # What tenancy (below audit) reports about accounts is recorded by listening (tenancy.signals).
        accounts.connect()
