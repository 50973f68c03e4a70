"""Schedules under test: a registry of made-up schedules whose jobs count their runs (the runner's
bookkeeping, the claim race, the catch-up after downtime), and the real ones for each job's work."""

from datetime import timedelta

import pytest
from django.utils import timezone

from schedules import runner
from schedules.definitions import Definition, JobProblem
from schedules.models import Schedule
from tests.ui.conftest import login, world  # noqa: F401 (the UI tests' fixtures)


class Counter:
    def __init__(self):
        self.runs = []

    def __call__(self, now):
        self.runs.append(now)
        return f"ran {len(self.runs)} time(s)"


@pytest.fixture
def counting(monkeypatch):
    """Two made-up schedules in place of the real ones: ``tick`` (every 60 s, counts its runs) and
    ``broken`` (every 60 s, raises), plus ``problem`` (raises JobProblem). Returns the counter."""
    counter = Counter()

    def broken(now):
        raise RuntimeError("the service said no")

    def problem(now):
        raise JobProblem("found something wrong")

    definitions = {
        "tick": Definition("tick", "Count", 60, counter),
        "broken": Definition("broken", "Always fails", 60, broken),
        "problem": Definition("problem", "Finds a problem", 60, problem),
    }
    monkeypatch.setattr(runner, "DEFINITIONS", definitions)
    monkeypatch.setattr("schedules.definitions.DEFINITIONS", definitions)
    return counter


def make_due(name: str, *, ago: timedelta = timedelta(0), now=None) -> None:
    now = now or timezone.now()
    Schedule.objects.filter(name=name).update(next_run_at=now - ago)
