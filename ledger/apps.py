from django.apps import AppConfig


class LedgerConfig(AppConfig):
    """The economic ledger: usage entries from runtimes (usage API and OTLP), prices, daily rollups,
    budgets and their alerts. Sits above ``policies`` (it feeds actual spend into the policy counters)."""

    name = "ledger"
    verbose_name = "Ledger"
