"""Runs the schedules that are due; called by ``manage.py worker`` on every turn of its loop
(``run_due``, ``seconds_until_next_due``), and by ``manage.py schedules --run`` and the tests.

**Inline in the worker, not as Django tasks** (docs/schedules.md): a schedule's guarantees rest on its
row, not on a task row. A run is *claimed* with one conditional UPDATE (due, and no unexpired lease), so
of several workers exactly one runs a tick; the claim sets ``next_run_at`` from *now* (not from the
missed ``next_run_at``), so after downtime a schedule runs once, not once per missed interval; and the
claim's lease lets another worker take over after a worker is killed mid-run (django-tasks-db never
reclaims a task left RUNNING). Enqueuing the run as a task would add a second queue row with weaker
guarantees and nothing gained: the worker would run it next anyway."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from schedules.definitions import DEFINITIONS, Definition, JobProblem
from schedules.models import Outcome, Schedule

logger = logging.getLogger("schedules")  # manage.py worker shows it on its console

#: How long ``seconds_until_next_due`` lets the worker sleep when no schedule is enabled.
IDLE_SECONDS = 3600.0
MAX_MESSAGE = 1000


def lease_seconds() -> int:
    """How long a claimed run may take before another worker may assume its worker died."""
    return int(getattr(settings, "ARM_SCHEDULE_LEASE_SECONDS", 900))


def schedule_rows(now: datetime | None = None) -> dict[str, Schedule]:
    """Every defined schedule's row, in definition order, creating the missing ones (due at once) and
    bringing each row's interval to the one in force (``ARM_SCHEDULE_INTERVALS``): one read of a few
    rows, and a write only when something differs. Rows of schedules no longer defined are left alone
    (and never run)."""
    now = now or timezone.now()
    rows = {row.name: row for row in Schedule.objects.filter(name__in=list(DEFINITIONS))}
    missing = [
        Schedule(name=d.name, interval_seconds=d.effective_interval, next_run_at=now)
        for d in DEFINITIONS.values()
        if d.name not in rows
    ]
    if missing:
        Schedule.objects.bulk_create(missing, ignore_conflicts=True)
        rows.update({row.name: row for row in Schedule.objects.filter(name__in=[m.name for m in missing])})
    for d in DEFINITIONS.values():
        row = rows[d.name]
        if row.interval_seconds != d.effective_interval:
            Schedule.objects.filter(name=d.name).update(interval_seconds=d.effective_interval)
            row.interval_seconds = d.effective_interval
    return {name: rows[name] for name in DEFINITIONS}


def _is_due(row: Schedule, now: datetime) -> bool:
    return row.interval_seconds > 0 and row.next_run_at <= now and not row.is_running(now)


@dataclass(frozen=True)
class Run:
    """What one run did (``run_schedule``)."""

    name: str
    outcome: str
    message: str
    duration_ms: int
    #: the job ran and found a problem (``JobProblem``), rather than failing to run
    problem: bool = False


def claim(definition: Definition, now: datetime, *, force: bool = False) -> uuid.UUID | None:
    """Take the schedule's next run: one conditional UPDATE, which the database settles (a racing worker
    matches nothing once the first has written). ``force``: now even if not due (``--run``), but never
    while another run holds the lease. Returns the run's token, or None when it was not ours to run."""
    token = uuid.uuid4()
    interval = definition.effective_interval
    free = Q(running_until__isnull=True) | Q(running_until__lte=now)
    rows = Schedule.objects.filter(free, name=definition.name)
    if not force:
        rows = rows.filter(next_run_at__lte=now, interval_seconds__gt=0)
    claimed = rows.update(
        # From now, not from the missed next_run_at: after downtime, one run, not one per missed interval.
        next_run_at=now + timedelta(seconds=interval or IDLE_SECONDS),
        running_until=now + timedelta(seconds=lease_seconds()),
        run_token=token,
        last_started_at=now,
        requested_by="",
    )
    return token if claimed else None


def _finish(name: str, token: uuid.UUID, outcome: str, message: str, started: float, problem: bool = False) -> Run:
    finished = timezone.now()
    duration_ms = max(0, int((time.monotonic() - started) * 1000))
    message = message[:MAX_MESSAGE]
    # Only the run that holds the claim finishes it: a run that outlived its lease (and was claimed again
    # by another worker) leaves the newer run's state alone.
    Schedule.objects.filter(name=name, run_token=token).update(
        running_until=None,
        run_token=None,
        last_finished_at=finished,
        last_duration_ms=duration_ms,
        last_outcome=outcome,
        last_message=message,
    )
    return Run(name, outcome, message, duration_ms, problem)


def execute(definition: Definition, token: uuid.UUID, now: datetime) -> Run:
    """Run a claimed schedule's job and record its outcome. A failure is the run's outcome, never the
    worker's end: the message says what went wrong, the traceback goes to the log."""
    started = time.monotonic()
    connection = transaction.get_connection()
    # Inside a caller's transaction (a test, a shell's atomic block) the job gets a savepoint, so its
    # failure still leaves the transaction usable for the outcome; at the top level each service the job
    # calls commits on its own, as the commands do (no long transaction holding locks).
    guard = transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext()
    problem = False
    try:
        with guard:
            message = definition.job(now)
        outcome = Outcome.OK
    except JobProblem as exc:
        message, outcome, problem = str(exc), Outcome.FAILED, True
    except Exception as exc:
        logger.exception("schedule %s failed", definition.name)
        message, outcome = f"{type(exc).__name__}: {exc}", Outcome.FAILED
        if not connection.in_atomic_block:
            close_old_connections()  # a connection the job left unusable is replaced before the outcome is written
    run = _finish(definition.name, token, outcome, message or "", started, problem)
    log = logger.info if outcome == Outcome.OK else logger.warning
    log("schedule %s: %s in %d ms: %s", run.name, run.outcome, run.duration_ms, run.message)
    return run


def run_schedule(name: str, *, now: datetime | None = None, force: bool = False) -> Run | None:
    """Claim and run one schedule (``force``: even if not due, as ``manage.py schedules --run``). None
    when another run holds it (or, without ``force``, it is not due)."""
    definition = DEFINITIONS[name]
    now = now or timezone.now()
    schedule_rows(now)
    token = claim(definition, now, force=force)
    if token is None:
        return None
    return execute(definition, token, now)


def run_due(now: datetime | None = None) -> int:
    """Run every schedule that is due and not running elsewhere, each once; returns how many ran. Two
    workers calling this at once run each due schedule once between them (``claim``)."""
    now = now or timezone.now()
    due = sorted(
        (row for row in schedule_rows(now).values() if _is_due(row, now)), key=lambda r: (r.next_run_at, r.name)
    )
    ran = 0
    for row in due:
        definition = DEFINITIONS[row.name]
        token = claim(definition, now)
        if token is None:
            continue  # another worker claimed it between our read and our UPDATE
        execute(definition, token, now)
        ran += 1
    return ran


def seconds_until_next_due(now: datetime | None = None) -> float:
    """How long until a schedule is due (0 when one is now), so the worker sleeps no longer than that. A
    schedule running elsewhere counts from its lease's end (due again then only if that worker died)."""
    now = now or timezone.now()
    moments = [
        max(row.next_run_at, row.running_until) if row.is_running(now) else row.next_run_at
        for row in schedule_rows(now).values()
        if row.interval_seconds > 0
    ]
    if not moments:
        return IDLE_SECONDS
    return max(0.0, (min(moments) - now).total_seconds())


def request_run(name: str, *, actor_ref: str, now: datetime | None = None) -> bool:
    """Make a schedule due now ("Run now" on the Schedules page): the worker runs it on its next turn,
    woken at once on PostgreSQL. A schedule already due or running is left as it is (False): repeated
    clicks never queue more runs. A disabled schedule (interval 0) is not run by the worker: False."""
    now = now or timezone.now()
    if name not in DEFINITIONS:
        raise KeyError(name)
    schedule_rows(now)
    changed = (
        Schedule.objects.filter(name=name, next_run_at__gt=now, interval_seconds__gt=0)
        .filter(Q(running_until__isnull=True) | Q(running_until__lte=now))
        .update(next_run_at=now, requested_by=actor_ref[:200])
    )
    if changed:
        _wake_worker()
    return bool(changed)


def _wake_worker() -> None:
    """On PostgreSQL, wake a waiting worker when this commits (``manage.py worker`` LISTENs on the
    channel); on SQLite it looks again within its short poll anyway."""
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify('arm_worker', '')")
