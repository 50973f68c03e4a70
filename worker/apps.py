from django.apps import AppConfig


class WorkerConfig(AppConfig):
    """The long-running process (``manage.py worker``): due schedules, Django tasks and the notification
    outbox, woken at commit on PostgreSQL. It owns no models."""

    name = "worker"
    verbose_name = "Worker"

    def ready(self) -> None:
        from django_tasks.signals import task_enqueued

        from worker import wake

        # A task enqueued anywhere (a web process) wakes a listening worker when its transaction commits.
        task_enqueued.connect(wake.on_task_enqueued, dispatch_uid="worker.wake")
