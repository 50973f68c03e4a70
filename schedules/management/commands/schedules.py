"""``manage.py schedules``: list the schedules the worker runs (interval, last run, its duration and
outcome, next run); ``--run NAME`` runs one now, in this process, and prints its outcome.

Exit status (``arm.commandutils.ExitCode``): 0 listed, or the run succeeded; 3 the run found a problem it
reports (``JobProblem``: a chain that does not extend its checkpoint, a witness that disagrees); 1 the run
failed otherwise, or another worker is running that schedule now; 2 bad usage (an unknown schedule, a
bad ``ARM_SCHEDULE_INTERVALS``)."""

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from arm.commandutils import ArmCommand, ExitCode, problem_found, usage_error
from arm.validators import terminal_safe
from schedules.definitions import DEFINITIONS
from schedules.models import Outcome
from schedules.runner import run_schedule, schedule_rows


def _when(moment, now) -> str:
    if moment is None:
        return "never"
    seconds = int((moment - now).total_seconds())
    ago = seconds < 0
    seconds = abs(seconds)
    text = f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"
    return f"{text} ago" if ago else ("now" if seconds == 0 else f"in {text}")


class Command(ArmCommand):
    help = (
        "List the schedules the worker runs (interval, last run, duration, outcome, next run); --run NAME runs "
        "one now in this process. Exit 3 when the run found a problem, 1 when it failed or runs elsewhere now, "
        "2 on bad usage."
    )

    def add_arguments(self, parser):
        parser.add_argument("--run", metavar="NAME", help=f"run this schedule now ({', '.join(DEFINITIONS)})")

    def handle(self, *args, run=None, **options):
        try:
            if run:
                return self._run(run)
            self._list()
        except ImproperlyConfigured as exc:
            raise usage_error(terminal_safe(str(exc))) from None

    def _list(self):
        now = timezone.now()
        rows = schedule_rows(now)
        self.stdout.write(
            f"{'SCHEDULE':<18} {'EVERY':>7}  {'LAST RUN':<10} {'TOOK':>8}  {'OUTCOME':<8} {'NEXT':<10} MESSAGE"
        )
        for name, row in rows.items():
            every = f"{row.interval_seconds}s" if row.interval_seconds else "off"
            took = f"{row.last_duration_ms} ms" if row.last_duration_ms is not None else "-"
            outcome = "running" if row.is_running(now) else (row.last_outcome or "-")
            upcoming = "-" if not row.interval_seconds else _when(row.next_run_at, now)
            self.stdout.write(
                f"{name:<18} {every:>7}  {_when(row.last_started_at, now):<10} {took:>8}  {outcome:<8} "
                f"{upcoming:<10} {terminal_safe(row.last_message)}"
            )

    def _run(self, name):
        if name not in DEFINITIONS:
            raise usage_error(
                terminal_safe(f"No schedule named {name!r}; the schedules are: {', '.join(DEFINITIONS)}.")
            )
        result = run_schedule(name, force=True)
        if result is None:
            self.stderr.write(f"{name} is running in another worker now; nothing was run.")
            raise SystemExit(int(ExitCode.FAILED))
        self.stdout.write(f"{name}: {result.outcome} in {result.duration_ms} ms. {terminal_safe(result.message)}")
        if result.problem:
            problem_found()
        if result.outcome != Outcome.OK:
            raise SystemExit(int(ExitCode.FAILED))
