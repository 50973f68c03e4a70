from django.apps import AppConfig


class WorkerConfig(AppConfig):
    """The long-running process (``manage.py worker``): due schedules, Django tasks and the notification
    outbox, woken at commit on PostgreSQL. It owns no models."""

    name = "worker"
    verbose_name = "Worker"
