"""The state of each schedule (``schedules.definitions`` defines them in code): when it runs next, how its
last run went, and the lease of a run in progress. One row per schedule, shared by every worker: a run is
claimed with one conditional UPDATE (``schedules.runner``), so several workers never run the same tick."""

from django.db import models

from arm.models import Unrecorded


class Outcome(models.TextChoices):
    OK = "ok"
    FAILED = "failed"


class Schedule(models.Model):
    """One schedule's timing and last run. ``interval_seconds`` mirrors the code's definition (with the
    settings' override) each time a worker starts, so the admin page shows what runs; 0: disabled.
    ``running_until`` is the lease of the run in progress (a worker killed mid-run leaves it; another
    may claim the schedule once it has passed), ``run_token`` names that run, so only its own worker
    finishes it."""

    # Operational state of work that spans every tenant (no tenant chain to record it in); what each run
    # changes is recorded by the services it calls (APPROVAL_EXPIRED, INTEGRITY_FAILED, ...).
    audit = Unrecorded("timing and outcome of the schedules the worker runs; each run's changes are recorded")

    name = models.CharField(max_length=64, primary_key=True)
    interval_seconds = models.PositiveIntegerField()
    next_run_at = models.DateTimeField()
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    last_outcome = models.CharField(max_length=10, choices=Outcome.choices, blank=True)
    last_message = models.CharField(max_length=1000, blank=True)
    running_until = models.DateTimeField(null=True, blank=True)
    run_token = models.UUIDField(null=True, blank=True)
    # Who asked for the next run early (the Schedules page's "Run now"; cleared when it is claimed).
    requested_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(last_outcome__in=["", *Outcome.values]), name="schedule_outcome_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def is_running(self, now) -> bool:
        return self.running_until is not None and self.running_until > now


class BudgetForecastNotice(models.Model):
    """A budget whose forecast crossed its amount in one period (``schedules.budgets``): the unique
    constraint makes the BUDGET_FORECAST_CROSSING record (and its notification) once per budget and
    period, however many workers look at once."""

    audit = Unrecorded(
        "marks the period a budget's forecast crossing was recorded in; the record itself is "
        "BUDGET_FORECAST_CROSSING on the budget, written with it"
    )

    budget = models.ForeignKey("ledger.Budget", on_delete=models.CASCADE, related_name="+")
    period_start = models.DateField()
    forecast_usd = models.DecimalField(max_digits=20, decimal_places=4)
    amount_usd = models.DecimalField(max_digits=16, decimal_places=4)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["budget", "period_start"], name="budgetforecastnotice_once_per_period")
        ]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.period_start}"
