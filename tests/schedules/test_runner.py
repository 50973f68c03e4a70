"""The runner: a due schedule runs once and its outcome is kept; after downtime a missed schedule runs
once (next run counted from now); a failure is the run's outcome, never the worker's end; a lease held by
a live run keeps others off, an expired one (a killed worker) does not; intervals from the settings."""

import time
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.utils import timezone

from schedules import runner
from schedules.models import Outcome, Schedule
from tests.schedules.conftest import make_due

pytestmark = pytest.mark.django_db


def test_a_new_schedule_is_due_at_once_and_runs_once(counting):
    now = timezone.now()
    assert runner.run_due(now) == 3  # tick, broken, problem: all new, all due
    assert counting.runs == [now]
    tick = Schedule.objects.get(name="tick")
    assert tick.last_outcome == Outcome.OK and tick.last_message == "ran 1 time(s)"
    assert tick.last_started_at == now and tick.last_finished_at is not None and tick.last_duration_ms >= 0
    assert tick.next_run_at == now + timedelta(seconds=60)
    assert tick.running_until is None and tick.run_token is None
    # Not due again until its interval has passed.
    assert runner.run_due(now + timedelta(seconds=59)) == 0
    assert runner.run_due(now + timedelta(seconds=60)) == 3
    assert len(counting.runs) == 2


def test_after_downtime_a_missed_schedule_runs_once_not_once_per_interval(counting):
    now = timezone.now()
    runner.run_due(now)
    # The worker was down for an hour: 60 runs of "tick" were missed.
    later = now + timedelta(hours=1)
    assert runner.run_due(later) == 3
    assert runner.run_due(later) == 0
    assert runner.run_due(later + timedelta(seconds=30)) == 0
    assert counting.runs == [now, later]
    # The next run counts from the run that caught up, not from the missed ticks.
    assert Schedule.objects.get(name="tick").next_run_at == later + timedelta(seconds=60)


def test_a_failing_job_is_recorded_as_failed_and_the_others_still_run(counting):
    now = timezone.now()
    assert runner.run_due(now) == 3
    broken = Schedule.objects.get(name="broken")
    assert broken.last_outcome == Outcome.FAILED
    assert broken.last_message == "RuntimeError: the service said no"
    assert broken.running_until is None and broken.next_run_at == now + timedelta(seconds=60)
    problem = Schedule.objects.get(name="problem")
    assert (problem.last_outcome, problem.last_message) == (Outcome.FAILED, "found something wrong")
    assert counting.runs == [now]


def test_a_live_lease_keeps_other_workers_off_and_an_expired_one_does_not(counting):
    now = timezone.now()
    runner.schedule_rows(now)
    # Another worker is running "tick" (its lease ends in 5 minutes).
    Schedule.objects.filter(name="tick").update(next_run_at=now, running_until=now + timedelta(minutes=5))
    runner.run_due(now)
    assert counting.runs == []
    assert runner.run_schedule("tick", now=now, force=True) is None  # --run waits for it too
    # That worker was killed: once its lease has passed, the schedule is taken over.
    after = now + timedelta(minutes=5, seconds=1)
    runner.run_due(after)
    assert counting.runs == [after]


def test_a_run_that_outlived_its_lease_leaves_the_newer_run_alone(counting):
    now = timezone.now()
    runner.schedule_rows(now)
    first = runner.claim(runner.DEFINITIONS["tick"], now)
    later = now + timedelta(seconds=runner.lease_seconds() + 1)
    make_due("tick", now=later)
    second = runner.claim(runner.DEFINITIONS["tick"], later)
    assert first and second and first != second
    runner._finish("tick", first, Outcome.FAILED, "late", started=time.monotonic())  # the first finishes at last
    row = Schedule.objects.get(name="tick")
    assert row.run_token == second and row.running_until is not None and row.last_message == ""


def test_seconds_until_next_due(counting):
    now = timezone.now()
    assert runner.seconds_until_next_due(now) == 0  # new schedules are due now
    runner.run_due(now)
    assert runner.seconds_until_next_due(now + timedelta(seconds=20)) == 40
    Schedule.objects.update(interval_seconds=0)
    with override_settings(ARM_SCHEDULE_INTERVALS="tick=0,broken=0,problem=0"):
        assert runner.seconds_until_next_due(now) == runner.IDLE_SECONDS


def test_intervals_are_overridden_by_the_settings_and_zero_turns_one_off(counting):
    now = timezone.now()
    with override_settings(ARM_SCHEDULE_INTERVALS="tick=5, broken=0"):
        rows = runner.schedule_rows(now)
        assert (rows["tick"].interval_seconds, rows["broken"].interval_seconds) == (5, 0)
        assert runner.run_due(now) == 2  # broken is off
        assert Schedule.objects.get(name="tick").next_run_at == now + timedelta(seconds=5)
        assert Schedule.objects.get(name="broken").last_started_at is None
        assert not runner.request_run("broken", actor_ref="user:a")
    for bad in ("nope=5", "tick=-1", "tick=soon"):
        with override_settings(ARM_SCHEDULE_INTERVALS=bad), pytest.raises(ImproperlyConfigured):
            runner.schedule_rows(now)


def test_request_run_makes_it_due_once(counting):
    now = timezone.now()
    runner.run_due(now)
    assert runner.request_run("tick", actor_ref="user:alice", now=now)
    assert not runner.request_run("tick", actor_ref="user:alice", now=now)  # already due: nothing more
    row = Schedule.objects.get(name="tick")
    assert row.next_run_at == now and row.requested_by == "user:alice"
    assert runner.run_due(now) == 1
    assert Schedule.objects.get(name="tick").requested_by == ""
    with pytest.raises(KeyError):
        runner.request_run("nope", actor_ref="user:alice")
