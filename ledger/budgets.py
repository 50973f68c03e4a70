"""Budgets: their writes, the evaluation of thresholds from the rollups after each ingestion
(``budgets_evaluate``) and acknowledging an alert. Each rule is decided here once; API views, UI views
and admin call these functions."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from arm.errors import Conflict
from arm.recording import annotate
from arm.writes import refuse_unknown, save, validate
from audit.choices import EventType
from audit.services import record_change
from ledger.choices import LEDGER_WRITE_ROLES, BudgetScope
from ledger.models import (
    Budget,
    BudgetAlert,
)
from ledger.selectors import budgets_period_spend
from registry.models import AgentTemplate
from tenancy.context import Actor, current_actor
from tenancy.permissions import require_roles

BUDGET_FIELDS = ("name", "scope", "template", "tag", "period", "amount_usd", "thresholds")


def _check_template(budget: Budget) -> None:
    if budget.template_id is not None and budget.template.tenant_id != budget.tenant_id:
        raise ValidationError({"template": "Template not found in this tenant."})


def budget_create(*, tenant, actor: Actor | None = None, pk=None, **data) -> Budget:
    """Create a budget (compliance or admin); BUDGET_CREATED. Scope, target and thresholds are checked
    by the model (and its check constraint). ``pk`` fixes the id (the demo's well-known objects); by
    default it is random."""
    actor = actor or current_actor()
    require_roles(actor, LEDGER_WRITE_ROLES, "Changing budgets")
    refuse_unknown(data, BUDGET_FIELDS)
    with transaction.atomic():
        budget = Budget(tenant=tenant, created_by=actor.ref, **data, **({"pk": pk} if pk is not None else {}))
        _check_template(budget)
        validate(budget, constraints=True)
        with annotate(budget, actor=actor):
            save(budget, force_insert=True)
    return budget


def budget_update(*, budget: Budget, actor: Actor | None = None, **changes) -> Budget:
    """Change a budget; BUDGET_CHANGED with the changes (none: no write). Alerts already raised stay;
    raising the amount does not re-arm thresholds crossed in this period."""
    actor = actor or current_actor()
    require_roles(actor, LEDGER_WRITE_ROLES, "Changing budgets")
    refuse_unknown(changes, BUDGET_FIELDS)
    with transaction.atomic():
        budget = Budget.objects.select_for_update().select_related("tenant").get(pk=budget.pk)
        for key, value in changes.items():
            setattr(budget, key, value)
        _check_template(budget)
        validate(budget, constraints=True)
        if not budget.changed_fields():
            return budget
        with annotate(budget, actor=actor):
            save(budget)
    return budget


def budget_check(*, tenant, budget: Budget | None = None, **data) -> None:
    """``budget_create``'s (or ``budget_update``'s) validation of ``data``, writing nothing (the UI's
    form shows the model's errors next to its own, all at once)."""
    refuse_unknown(data, BUDGET_FIELDS)
    obj = Budget(tenant=tenant) if budget is None else Budget.objects.get(pk=budget.pk)
    for key, value in data.items():
        setattr(obj, key, value)
    _check_template(obj)
    try:
        validate(obj, exclude=[f for f in BUDGET_FIELDS if f not in data], constraints=True)
    except ValidationError as exc:
        # Only the fields given: the form reported the others (Budget.clean checks its rules on every field).
        given = {k: v for k, v in getattr(exc, "error_dict", {}).items() if k in data}
        if given or not hasattr(exc, "error_dict"):
            raise ValidationError(given or exc.messages) from exc


def budget_delete(*, budget: Budget, actor: Actor | None = None) -> None:
    """Delete a budget and its alerts; BUDGET_DELETED keeps what it was and how many alerts it had."""
    actor = actor or current_actor()
    require_roles(actor, LEDGER_WRITE_ROLES, "Changing budgets")
    with transaction.atomic():
        budget = Budget.objects.select_for_update().select_related("tenant").get(pk=budget.pk)
        try:
            with annotate(budget, actor=actor, alerts=budget.alerts.count()):
                budget.delete()
        except ProtectedError as exc:  # nothing protects a budget today; kept honest if that changes
            raise Conflict("This budget is still referenced.", code="budget_referenced") from exc


def budgets_evaluate(*, tenant, template_ids, days, actor: Actor | None = None) -> list[BudgetAlert]:
    """Check every budget the given templates' spend counts towards (tenant budgets, those templates'
    budgets, budgets of their tags) for each period containing one of ``days``, from the rollups; insert a
    ``BudgetAlert`` and write BUDGET_THRESHOLD_CROSSED for each threshold crossed for the first time.

    "First time" is settled by the unique constraint (budget, period_start, threshold): a concurrent
    ingestion crossing the same threshold fails its insert inside a savepoint and records nothing."""
    actor = actor or current_actor()
    budgets = list(Budget.objects.filter(tenant=tenant).select_related("template"))
    if not budgets:
        return []
    template_ids = set(template_ids)
    tags: set[str] = set()
    if any(b.scope == BudgetScope.TAG for b in budgets):
        for template_tags in AgentTemplate.objects.filter(tenant=tenant, pk__in=template_ids).values_list(
            "tags", flat=True
        ):
            tags.update(template_tags or ())
    affected = [
        b
        for b in budgets
        if b.scope == BudgetScope.TENANT
        or (b.scope == BudgetScope.TEMPLATE and b.template_id in template_ids)
        or (b.scope == BudgetScope.TAG and b.tag in tags)
    ]
    if not affected:
        return []
    periods = sorted(
        {(b, start) for b in affected for start in {b.period_bounds(day)[0] for day in days}},
        key=lambda p: (p[0].name, p[1]),
    )
    existing = set(
        BudgetAlert.objects.filter(budget__in=affected, period_start__in={s for _, s in periods}).values_list(
            "budget_id", "period_start", "threshold"
        )
    )
    pending = {
        (b.pk, start): sorted(t for t in b.thresholds if (b.pk, start, t) not in existing) for b, start in periods
    }
    spend = budgets_period_spend([(b, start) for b, start in periods if pending[(b.pk, start)]])
    alerts = []
    now = timezone.now()
    for budget, start in periods:
        for threshold in pending[(budget.pk, start)]:
            amount = spend[(budget.pk, start)]
            if amount * 100 < budget.amount_usd * threshold:
                break
            alert = BudgetAlert(
                tenant=tenant,
                budget=budget,
                period_start=start,
                threshold=threshold,
                spend_usd=amount,
                amount_usd=budget.amount_usd,
                crossed_at=now,
            )
            try:
                with transaction.atomic():
                    alert.save(force_insert=True)
            except IntegrityError:
                continue  # crossed by a concurrent ingestion, which recorded it
            record_change(
                tenant=tenant,
                event_type=EventType.BUDGET_THRESHOLD_CROSSED,
                target=budget,
                payload={
                    "budget": budget.name,
                    "threshold": threshold,
                    "period": budget.period,
                    "period_start": start,
                    "spend_usd": str(amount),
                    "amount_usd": str(budget.amount_usd),
                },
                actor=actor,
            )
            alerts.append(alert)
    return alerts


def budget_alert_acknowledge(*, alert: BudgetAlert, actor: Actor | None = None) -> BudgetAlert:
    """Acknowledge a budget alert (compliance or admin): who and when are stamped on the alert, and
    BUDGET_ALERT_ACKNOWLEDGED is appended on its budget (alerts are unrecorded rows; the budget carries
    their history). A conditional UPDATE decides, so of two concurrent acknowledgements one wins and the
    other is a 409 ``already_acknowledged``."""
    actor = actor or current_actor()
    require_roles(actor, LEDGER_WRITE_ROLES, "Acknowledging budget alerts")
    now = timezone.now()
    with transaction.atomic():
        won = BudgetAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
            acknowledged_by=actor.ref, acknowledged_at=now
        )
        alert = BudgetAlert.objects.select_related("budget__tenant").get(pk=alert.pk)
        if not won:
            raise Conflict(
                f"This alert was already acknowledged by {alert.acknowledged_by}.", code="already_acknowledged"
            )
        record_change(
            tenant=alert.budget.tenant,
            event_type=EventType.BUDGET_ALERT_ACKNOWLEDGED,
            target=alert.budget,
            payload={
                "budget": alert.budget.name,
                "alert": str(alert.pk),
                "threshold": alert.threshold,
                "period_start": alert.period_start,
                "crossed_at": alert.crossed_at.isoformat(),
            },
            actor=actor,
        )
    return alert
