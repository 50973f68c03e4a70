from django.db import models


class EndpointKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (Standard Webhooks)"
    SLACK = "slack", "Slack incoming webhook"
    EMAIL = "email", "Email to a role"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (will retry)"
    DEAD = "dead", "Dead (gave up)"


class AttemptOutcome(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    DEAD = "dead", "Failed, the last attempt"
