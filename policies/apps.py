from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    """Policy envelopes, tool-call evaluation, the decision log and spend counters (SPEC §4)."""

    name = "policies"
    verbose_name = "Policies"
