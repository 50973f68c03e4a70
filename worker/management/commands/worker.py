"""``manage.py worker``: ARM's background process (issue 25). One loop, each turn:

1. due schedules (``schedules.runner.run_due``: expiry, sweeps, polls; each run once however many
   workers run, a missed one once after downtime);
2. Django tasks (django-tasks-db's queue: one-off jobs people start, such as a test event or a
   redelivery);
3. the notification outbox (``notifications.delivery.drain``).

When a turn found nothing to do it waits: on PostgreSQL for a NOTIFY on ``arm_worker`` (sent at the
commit of every transaction that queued work, so a new event is picked up within milliseconds), on SQLite
for ``ARM_WORKER_POLL_SECONDS``; never longer than until the next retry or schedule is due. Any number of
workers may run, on any hosts: deliveries are claimed with leases (``FOR UPDATE SKIP LOCKED``), schedules
and tasks likewise. SIGTERM or SIGINT stops it after the current item (a second one exits at once).
One log line per thing done, on stdout.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import sys
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from notifications import delivery
from worker.wake import Waiter

logger = logging.getLogger("arm.worker")

IDLE_SECONDS = 30.0  # the longest wait with nothing scheduled (a NOTIFY or the poll wakes it sooner)
MIN_WAIT_SECONDS = 0.01


def _schedules_runner():
    try:
        return importlib.import_module("schedules.runner")
    except ModuleNotFoundError as exc:
        if exc.name not in ("schedules", "schedules.runner"):
            raise
        return None


class TaskRunner:
    """Runs ready tasks of the database backend with django-tasks-db's own worker logic (its claim and its
    bookkeeping of results), one at a time, from this loop."""

    def __init__(self, worker_id: str):
        from django_tasks_db.management.commands.db_worker import Worker

        self.worker = Worker(
            queue_names=["*"],
            interval=0,
            batch=True,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=worker_id,
            excluded_queue_names=[],
        )

    def run_one(self) -> bool:
        from django.db import OperationalError
        from django_tasks_db.models import DBTaskResult
        from django_tasks_db.utils import exclusive_transaction

        tasks = DBTaskResult.objects.ready().filter(backend_name="default")
        if not tasks.exists():  # a read first: the claim below takes SQLite's write lock
            return False
        try:
            with exclusive_transaction(tasks.db):
                result = tasks.get_locked()
                if result is not None:
                    result.claim(self.worker.worker_id)
        except OperationalError as exc:  # SQLite busy: another process holds the write lock; next turn
            logger.warning("tasks: %s", exc)
            return False
        if result is None:
            return False
        started = time.monotonic()
        self.worker.run_task(result)
        result.refresh_from_db(fields=["status"])
        logger.info(
            "task %s %s: %s in %d ms", result.task_path, result.id, result.status, (time.monotonic() - started) * 1000
        )
        return True


class Command(BaseCommand):
    # Started often (make run, tests, every host): `manage.py check` belongs to deployment, not to each start.
    requires_system_checks = []
    help = (
        "Run ARM's background worker: due schedules, Django tasks and notification deliveries, woken at "
        "commit on PostgreSQL (LISTEN arm_worker), polling on SQLite. Stops cleanly on SIGTERM/SIGINT."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=100, help="deliveries claimed per turn (default 100)")
        parser.add_argument("--once", action="store_true", help="run until nothing is due, then exit (cron, tests)")
        parser.add_argument("--no-schedules", action="store_true", help="leave schedules to other workers")
        parser.add_argument("--no-tasks", action="store_true", help="leave Django tasks to other workers")

    def handle(self, *args, batch: int, once: bool, no_schedules: bool, no_tasks: bool, verbosity: int, **options):
        self._configure_logging(verbosity)
        stop = threading.Event()
        self._install_signals(stop)
        worker_id = f"{socket.gethostname()}:{os.getpid()}"
        schedules = None if no_schedules else _schedules_runner()
        tasks = None if no_tasks else TaskRunner(worker_id)
        waiter = Waiter(stop, poll_seconds=settings.ARM_WORKER_POLL_SECONDS)
        logger.info(
            "worker %s started on %s (%s); schedules %s, tasks %s",
            worker_id,
            connection.vendor,
            "woken by LISTEN arm_worker" if waiter.listening else f"polling every {settings.ARM_WORKER_POLL_SECONDS}s",
            "on" if schedules else "off",
            "on" if tasks else "off",
        )
        try:
            while not stop.is_set():
                close_old_connections()
                done = self._turn(stop, schedules, tasks, batch)
                if once and not done:
                    break
                if done or stop.is_set():
                    continue
                waiter.wait(self._idle_seconds(schedules))
        finally:
            waiter.close()
            logger.info("worker %s stopped", worker_id)

    def _turn(self, stop, schedules, tasks, batch: int) -> int:
        """Everything due now, once; how many things were done."""
        done = 0
        if schedules is not None:
            done += schedules.run_due()
        while tasks is not None and not stop.is_set() and done < 1000 and tasks.run_one():
            done += 1
        if not stop.is_set():
            done += delivery.drain(batch)
        return done

    def _idle_seconds(self, schedules) -> float:
        waits = [IDLE_SECONDS]
        due = delivery.seconds_until_due()
        if due is not None:
            waits.append(due)
        if schedules is not None:
            waits.append(schedules.seconds_until_next_due())
        # Never 0: something due that another worker holds right now must not make this one spin.
        return max(min(waits), MIN_WAIT_SECONDS)

    def _install_signals(self, stop: threading.Event) -> None:
        def handle(signum, frame):
            if stop.is_set():  # a second signal: leave now, not even waiting for requests in flight
                logger.warning(
                    "worker: %s again, exiting at once (what was being sent is retried)", signal.Signals(signum).name
                )
                sys.stdout.flush()
                os._exit(1)
            logger.info("worker: %s, stopping after the current item", signal.Signals(signum).name)
            stop.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def _configure_logging(self, verbosity: int) -> None:
        handler = logging.StreamHandler(self.stdout._out)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        for name in ("arm.worker", "notifications", "schedules"):
            log = logging.getLogger(name)
            log.handlers = [handler]
            log.setLevel(logging.INFO if verbosity >= 1 else logging.WARNING)
            log.propagate = False
