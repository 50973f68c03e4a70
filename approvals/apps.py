from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    """Human sign-off on risky tool calls: requests, four-eyes decisions, expiry (SPEC §5)."""

    name = "approvals"
    verbose_name = "Approvals"
