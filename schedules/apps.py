from django.apps import AppConfig


class SchedulesConfig(AppConfig):
    """Work ARM does on its own, on an interval, run by ``manage.py worker`` (no system cron): approval
    expiry, the stale-heartbeat sweep, provider health polling, the integrity sweep, budget thresholds and
    forecasts, audit checkpoints. Each schedule calls the service that owns its rule (docs/schedules.md)."""

    name = "schedules"
    verbose_name = "Schedules"
