"""Shared plumbing for management commands: domain errors become clean CommandErrors, every command ends
with one of the documented exit codes (``ExitCode``), a reader that goes away (``| head``) ends it quietly,
and long steps report progress on stderr (``ArmCommand``, ``Progress``). Who a command acts as and the
tenants it is given are ``tenancy.commandutils``."""

import os
import sys
import time
from enum import IntEnum
from typing import NoReturn

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from arm.errors import DomainError
from arm.validators import terminal_safe


class ExitCode(IntEnum):
    """Every ARM command's exit status, so cron and scripts tell a typo from an incident (docs/decisions.md,
    "Commands")."""

    OK = 0
    #: the command could not finish: an unexpected error (Python's own status for a traceback), a witness
    #: that could not be reached, output nobody reads any more
    FAILED = 1
    #: nothing was done because of what was asked: bad or missing arguments (argparse's status), an
    #: unknown tenant or user, an unreadable or invalid input file, input the services refuse
    USAGE = 2
    #: the check ran and found a problem: a tampered version, a broken chain, an edited export, a chain
    #: that does not extend its signed checkpoint
    PROBLEM_FOUND = 3


def usage_error(message: str) -> CommandError:
    """A refusal of the command line or its input (exit 2). ``message`` is printed as given: escape user
    text in it (``terminal_safe``)."""
    return CommandError(message, returncode=ExitCode.USAGE)


def problem_found() -> NoReturn:
    """End a check that found a problem (exit 3), after it has printed what it found."""
    raise SystemExit(int(ExitCode.PROBLEM_FOUND))


def as_command_error(exc: Exception) -> CommandError:
    """A clean CommandError (exit 2: the input was refused); user-supplied text in it is escaped for the
    terminal (``terminal_safe``)."""
    if isinstance(exc, ValidationError):
        return usage_error(
            terminal_safe(
                "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.message_dict.items())
                if hasattr(exc, "error_dict")
                else "; ".join(exc.messages)
            )
        )
    if isinstance(exc, DomainError):
        return usage_error(terminal_safe(exc.message))
    return usage_error(terminal_safe(str(exc)))


def _discard_closed_output() -> None:
    """After a write to a closed pipe: point the process's standard streams that fail at /dev/null, so
    what is still buffered for them goes nowhere at exit instead of into "Exception ignored … BrokenPipeError"
    (and exit status 120)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        except (OSError, ValueError):  # not a real file (a test's StringIO), or already closed
            pass


class ArmCommand(BaseCommand):
    """The base of ARM's commands. A reader that goes away (``manage.py export_audit | head -1``) ends the
    command at once, without a traceback, with exit 1 (its output is incomplete), unless it was already
    ending with a status of its own (a check that found a problem still exits 3).

    ``progress_option = True`` adds ``--progress``: progress lines on stderr (``self.progress``,
    ``self.step``) show on a terminal, or with ``--progress`` when stderr is a log; otherwise the command
    is silent but for its result (cron mails nothing but a failure)."""

    progress_option = False

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        if self.progress_option:
            parser.add_argument(
                "--progress",
                action="store_true",
                help="report progress on stderr even when it is not a terminal (a line every 10 seconds)",
            )
        return parser

    def execute(self, *args, **options):
        self.show_progress = bool(options.get("progress"))
        try:
            result = super().execute(*args, **options)
            self.stdout.flush()
            self.stderr.flush()
            return result
        except BrokenPipeError:
            _discard_closed_output()
            raise SystemExit(int(ExitCode.FAILED)) from None
        except BaseException:
            _discard_closed_output()  # what was printed before the error still reaches the reader, if any
            raise

    def progress(self, total: int, label: str) -> "Progress":
        return Progress(self.stderr, total, label, show=self.show_progress or None)

    def step(self, text: str) -> None:
        """One line saying what a long command does now, shown as ``progress`` lines are."""
        if self.show_progress or _is_terminal(self.stderr):
            self.stderr.write(text)
            self.stderr.flush()


def _is_terminal(stream) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


class Progress:
    """Progress of a long command on ``stream`` (a command's ``self.stderr``): on a terminal, one line
    redrawn in place with a bar, the rate and the time left; with ``show=True`` elsewhere (logs, CI), a
    plain line every ``every`` seconds and one at the end; otherwise nothing (cron mails only the
    result). ``show=None``: shown on a terminal only. ``update(done)`` as work completes (also a service's
    ``progress(done, total)`` callback, when the total is known only once the work starts), ``finish()`` at
    the end (nothing when no update came: the work was too short to report)."""

    def __init__(
        self, stream, total: int, label: str, *, show: bool | None = None, every: float = 10.0, clock=time.monotonic
    ):
        self.stream, self.total, self.label, self.every, self.clock = stream, max(total, 0), label, every, clock
        self.started = self.last = clock()
        self.tty = _is_terminal(stream)
        self.shown = self.tty if show is None else show
        self.done, self.updated = 0, False

    def update(self, done: int, total: int | None = None) -> None:
        self.done, self.updated = done, True
        if total is not None:
            self.total = max(total, 0)
        if not self.shown:
            return
        now = self.clock()
        if self.tty:
            if now - self.last >= 0.2 or done >= self.total:
                self.last = now
                self.stream.write("\r" + self.line(now), ending="")
                self.stream.flush()
        elif now - self.last >= self.every:
            self.last = now
            self.stream.write(self.line(now))

    def finish(self, done: int | None = None) -> None:
        if done is not None and self.updated:
            self.done = done  # the count a service's result gives, past its last report
        if not self.shown or not self.updated:
            return
        if self.tty:
            self.stream.write("\r" + self.line(self.clock()))
        else:
            self.stream.write(self.line(self.clock()))

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        share = self.done / self.total if self.total else 1.0
        left = (self.total - self.done) / rate if rate > 0 else None
        eta = _duration(left) if left is not None else "?"
        text = f"{self.label} {self.done:,}/{self.total:,} ({share:.0%}) {rate:,.0f}/s"
        if self.tty:
            width = 24
            filled = int(width * share)
            return f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {text[len(self.label) + 1 :]} ETA {eta}  "
        return f"{text}, {_duration(elapsed)} elapsed, about {eta} left"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
