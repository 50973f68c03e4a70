from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Event subscriptions per tenant: the outbox written with the change records, its delivery by the
    worker (webhooks signed per Standard Webhooks, Slack, email), and the SSRF-safe outbound client."""

    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # Change records that can notify write their outbox rows in the same transaction from here on.
        from notifications import outbox

        outbox.connect()
