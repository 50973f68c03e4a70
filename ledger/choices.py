from django.db import models

from tenancy.choices import Role

# Who writes prices and budgets: compliance (and admin), as for cost limits.
LEDGER_WRITE_ROLES = (Role.COMPLIANCE,)


class CostSource(models.TextChoices):
    REPORTED = "reported"  # the runtime sent cost_usd
    PRICED = "priced"  # tokens × the tenant's price in effect at occurred_at
    UNPRICED = "unpriced"  # no cost sent and no price known: counted as 0


class UsageSource(models.TextChoices):
    API = "api"
    OTLP = "otlp"


class BudgetScope(models.TextChoices):
    TENANT = "tenant"
    TEMPLATE = "template"
    TAG = "tag"


class BudgetPeriod(models.TextChoices):
    DAILY = "daily"
    MONTHLY = "monthly"
