"""Which saves write a change record, and which deliberately do not: the one place to look, and the one
place a new model is added.

Every concrete model of ARM's own apps (the packages at the top of this repository: ``arm``, ``audit``,
``registry``, ``approvals``, ``policies`` and any app added beside them) is in exactly one of the two
tables below. ``manage.py check`` (``audit.E001``…) and ``tests/audit/test_every_model_recorded.py``
fail while a model is in neither, so a new app cannot forget its models.

- ``RECORDED``: a ``post_save`` / ``post_delete`` receiver (``audit.recording``) appends one change
  record for every ``save()`` and ``delete()`` of the model, from anywhere (services, admin, shell,
  commands), in the same transaction. A service names the event (``audit.recording.describe``);
  otherwise the record is the generic ``<PREFIX>_CREATED`` / ``<PREFIX>_CHANGED`` / ``<PREFIX>_DELETED``
  with the fields written. The model must subclass ``arm.models.RecordedModel`` (its ``save()`` runs in
  a transaction) and the three event types must exist in ``audit.choices.EventType``.
- ``UNRECORDED``: no receiver, with the reason. ``QuerySet.update()``, ``bulk_create()`` and raw SQL
  send no signals at all; code that uses them on a recorded model writes its records itself
  (``audit.recording.record_bulk_created``, or an explicit ``audit.services.record_change`` after a
  conditional UPDATE).

Models are named by label (``"registry.AgentVersion"``), never imported: audit sits at the bottom of
the app layers and knows the apps above it only as names, like a string foreign key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Recorded:
    """How the saves of one model are recorded.

    ``prefix``: of the generic event types (``TEMPLATE`` → ``TEMPLATE_CREATED``, ``TEMPLATE_CHANGED``,
    ``TEMPLATE_DELETED``). ``tenant``: the field naming the tenant whose chain gets the record (``""``:
    the row is the tenant). ``name_only``: fields a generic record names but never shows the value of
    (secrets; bulky write-once values whose hash is recorded). ``unrecorded_columns``: columns a
    ``<PREFIX>_CHANGED`` record never lists, so changing only them writes no record (hot-path stamps
    written with ``QuerySet.update()``, or with records of their own). ``delete_refused``: why deleting
    is refused by design ("" when a delete is recorded as ``<PREFIX>_DELETED``)."""

    prefix: str
    tenant: str = "tenant"
    name_only: tuple[str, ...] = ()
    unrecorded_columns: tuple[str, ...] = ()
    delete_refused: str = ""

    def event(self, what: str) -> str:
        return f"{self.prefix}_{what}"


RECORDED: dict[str, Recorded] = {
    "arm.Tenant": Recorded(
        "TENANT",
        tenant="",
        delete_refused="a tenant's change records point at it (PROTECT): its chain, and the tenant, stay",
    ),
    "arm.Membership": Recorded("MEMBERSHIP"),
    "arm.ApiKey": Recorded(
        "API_KEY",
        # The secret's hash: a record says it changed, never what it is.
        name_only=("key_hash",),
        # Stamped on every authenticated request (arm.authentication, one UPDATE).
        unrecorded_columns=("last_used_at",),
    ),
    "registry.Environment": Recorded("ENVIRONMENT"),
    "registry.Provider": Recorded("PROVIDER"),
    "registry.AgentTemplate": Recorded("TEMPLATE"),
    "registry.AgentVersion": Recorded(
        "VERSION",
        # Write-once and possibly large; its SHA-256 (genome_hash) is in the record.
        name_only=("genome",),
        # Integrity checks stamp these with one UPDATE and write their own INTEGRITY_* records.
        unrecorded_columns=("integrity_status", "integrity_checked_at"),
        delete_refused="versions are immutable history: the model and a database trigger refuse deletes",
    ),
    "registry.EvaluationResult": Recorded("EVALUATION"),
    "registry.AgentInstance": Recorded(
        "INSTANCE",
        # Heartbeats: the hottest write path, one UPDATE and no record (SPEC §3).
        unrecorded_columns=("last_heartbeat_at", "heartbeat_status"),
    ),
    "approvals.ApprovalRequest": Recorded("APPROVAL"),
    "policies.PolicyEnvelope": Recorded("POLICY"),
    "ledger.Price": Recorded("PRICE"),
    "ledger.Budget": Recorded("BUDGET"),
}

UNRECORDED: dict[str, str] = {
    "ledger.UsageEntry": (
        "the ledger is itself the record of usage (append-only, enforced by triggers); each accepted batch "
        "writes one USAGE_INGESTED record with its counts, source, instances, cost and time range"
    ),
    "ledger.DailyRollup": "a sum of ledger entries, maintained in the same transaction as the entries it sums",
    "ledger.TemplateDayRollup": "a sum of ledger entries, maintained in the same transaction as the entries it sums",
    "ledger.InstanceSpanRollup": "a sum of ledger entries, maintained in the same transaction as the entries it sums",
    "ledger.BudgetAlert": (
        "written once per (budget, period, threshold) by ledger.services.budgets_evaluate, which appends "
        "BUDGET_THRESHOLD_CROSSED on the budget itself; a budget's delete removes its alerts and records them"
    ),
    "audit.ChangeRecord": "the change records themselves (append-only; a record of a record would never end)",
    "audit.ChainHead": "the tip of a tenant's chain, moved by every append in the append's own transaction",
    "audit.ChainCheckpoint": (
        "a cache of a successful verification (append-only); the verification is what is audited, and "
        "a checkpoint proves nothing on its own"
    ),
    "audit.SignedCheckpoint": (
        "a signed statement about the chain itself (append-only); a record of it would move the head it signs, "
        "and its proof is its signature, published outside ARM"
    ),
    "policies.PolicyDecision": (
        "the decision log is itself the record of every evaluation, one row per call on the hot path "
        "(approvals it opens or uses write their APPROVAL_* records)"
    ),
    "policies.DecisionDayCount": (
        "a count of ALLOW decisions, maintained by evaluation in the same transaction as the decision rows"
    ),
    "policies.InstanceSpend": (
        "spend and call counters, incremented with one upsert per ALLOWed evaluation; the decision rows carry "
        "each estimate"
    ),
}


def domain_app_configs():
    """ARM's own apps: installed packages at the top of this repository (third-party apps live in the
    virtualenv). A new app created beside ``registry`` is one of them as soon as it is installed."""
    from django.apps import apps
    from django.conf import settings

    root = Path(settings.BASE_DIR).resolve()
    return [config for config in apps.get_app_configs() if Path(config.path).resolve().parent == root]


def domain_models():
    """Every concrete model of ARM's own apps (no abstract, proxy or auto-created through models)."""
    return [
        model
        for config in domain_app_configs()
        for model in config.get_models()
        if not model._meta.proxy and not model._meta.auto_created
    ]
