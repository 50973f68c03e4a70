"""Two workers at the same moment, each on its own database connection: a due schedule runs once
(PostgreSQL: SQLite serializes every writer anyway)."""

import pytest
from django.db import connection
from django.utils import timezone

from schedules import runner
from schedules.models import Schedule
from tests.helpers import race

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (separate connections)"),
    pytest.mark.django_db(transaction=True),
]


def test_two_workers_at_once_run_a_due_schedule_once(counting):
    now = timezone.now()
    runner.schedule_rows(now)
    for _ in range(5):  # several rounds, each a fresh race on a due schedule
        Schedule.objects.update(next_run_at=now, running_until=None)
        before = len(counting.runs)
        ran = race([lambda: runner.run_due(now), lambda: runner.run_due(now)])
        assert len(counting.runs) - before == 1, ran
        assert sum(ran) == 3  # each of the three schedules ran in exactly one of the two workers
