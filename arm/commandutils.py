"""Shared plumbing for management commands: changes they make are attributed (actor ``system`` or
``--actor <username>``), and domain errors become clean CommandErrors."""

import time

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from arm.context import Actor
from arm.errors import DomainError
from arm.models import Tenant
from arm.validators import terminal_safe


def command_actor(username: str | None) -> Actor:
    if not username:
        return Actor.system()
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user named {username!r}.")
    return Actor(ref=f"user:{username}", user=user, roles=Actor.system().roles, is_superuser=True)


def get_tenant(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"No tenant with slug {slug!r}.")
    return tenant


def tenants_for(slug: str | None):
    return [get_tenant(slug)] if slug else list(Tenant.objects.order_by("slug"))


def as_command_error(exc: Exception) -> CommandError:
    """A clean CommandError; user-supplied text in it is escaped for the terminal (``terminal_safe``)."""
    if isinstance(exc, ValidationError):
        return CommandError(
            terminal_safe(
                "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.message_dict.items())
                if hasattr(exc, "error_dict")
                else "; ".join(exc.messages)
            )
        )
    if isinstance(exc, DomainError):
        return CommandError(terminal_safe(exc.message))
    return CommandError(terminal_safe(str(exc)))


class Progress:
    """Progress of a long command on ``stream`` (a command's ``self.stderr``): on a terminal, one line
    redrawn in place with a bar, the rate and the time left; elsewhere (logs, CI, cron) a plain line
    every ``every`` seconds. ``update(done)`` as work completes, ``finish()`` at the end."""

    def __init__(self, stream, total: int, label: str, *, every: float = 10.0, clock=time.monotonic):
        self.stream, self.total, self.label, self.every, self.clock = stream, max(total, 0), label, every, clock
        self.started = self.last = clock()
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.done = 0

    def update(self, done: int) -> None:
        self.done = done
        now = self.clock()
        if self.tty:
            if now - self.last >= 0.2 or done >= self.total:
                self.last = now
                self.stream.write("\r" + self.line(now), ending="")
                self.stream.flush()
        elif now - self.last >= self.every:
            self.last = now
            self.stream.write(self.line(now))

    def finish(self) -> None:
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
