"""Every write of the policies app: envelopes (create, update, delete, attach) and tool-call
evaluation. API views, UI views, admin actions, commands and the demo seed call these."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal

import rfc8785
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, FilteredRelation, ProtectedError, Q
from django.utils import timezone

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from approvals.services import approval_consume, approval_expire, approval_open
from arm.compiled import CompiledQuery
from arm.errors import Conflict, NotFound, RoleRequired
from arm.jsonutil import json_problem
from arm.recording import annotate
from arm.validators import MAX_TOOL_NAME_LENGTH, validate_name
from arm.writes import field_values, refuse_unknown, save, update, validate, validate_given
from audit.choices import EventType
from audit.services import diff
from policies.choices import Decision, ReasonCode, SpendPeriod
from policies.engine import ApprovalInput, EvaluationInput, PolicyInput, Reason, decide
from policies.models import (
    DecisionDayCount,
    IdempotentCall,
    InstanceSpend,
    PolicyAttachment,
    PolicyDecision,
    PolicyEnvelope,
    attached_policy,
)
from registry import services as registry_services
from registry.genome import entry_risk, manifest_tool, tool_risk
from registry.models import AgentInstance
from tenancy.choices import Role
from tenancy.context import Actor, current_actor
from tenancy.permissions import principal_expression, require_roles

POLICY_WRITE_ROLES = (Role.COMPLIANCE,)
EVALUATE_ROLES = (Role.RUNTIME, Role.OPERATOR, Role.ADMIN)
POLICY_FIELDS = (
    "name",
    "description",
    "autonomy_tier",
    "allowed_tools",
    "denied_tools",
    "data_scopes",
    "cost_limit_daily_usd",
    "cost_limit_monthly_usd",
    "approval_timeout_seconds",
    "tool_risk_overrides",
)
ZERO = Decimal("0")
NO_SPEND = (ZERO, ZERO)  # (estimated, actual) of a period without a counter row yet
# One call's estimate is capped so the per-period spend counters can never overflow their columns.
MAX_ESTIMATE_USD = Decimal("1000000")
MAX_IDEMPOTENCY_KEY_LENGTH = 200


def _snapshot(policy: PolicyEnvelope) -> dict:
    return field_values(policy, POLICY_FIELDS)


def _validate(policy: PolicyEnvelope) -> None:
    """The envelope's rules and its name's uniqueness in the tenant, every error at once (the tenant is the
    row the service was given: no query for it)."""
    validate(policy, exclude=["tenant"])


# ---------------------------------------------------------------- envelopes


def policy_create(*, tenant, actor: Actor | None = None, pk=None, **data) -> PolicyEnvelope:
    """Create an envelope (compliance or admin) with its POLICY_CREATED record. ``pk`` fixes the id (the
    demo's well-known objects); by default it is random."""
    actor = actor or current_actor()
    require_roles(actor, POLICY_WRITE_ROLES, "Creating a policy")
    refuse_unknown(data, POLICY_FIELDS)
    with transaction.atomic():
        policy = PolicyEnvelope(
            tenant=tenant, created_by=actor.ref, revision=1, **data, **({"pk": pk} if pk is not None else {})
        )
        _validate(policy)
        with annotate(policy, actor=actor):
            save(policy, force_insert=True)
    return policy


def policy_update(*, policy: PolicyEnvelope, actor: Actor | None = None, **changes) -> PolicyEnvelope:
    """Change an envelope; ``revision`` goes up by one on every effective change (none: no write)."""
    actor = actor or current_actor()
    require_roles(actor, POLICY_WRITE_ROLES, "Editing a policy")
    refuse_unknown(changes, POLICY_FIELDS)

    def revise(policy, before: dict, after: dict):
        # An effective change is the next revision (its record lists both numbers); none writes nothing.
        if not policy.changed_fields():
            return None
        policy.revision += 1
        return annotate(policy, actor=actor)

    return update(policy, changes, POLICY_FIELDS, record=revise, validator=_validate)


def policy_check(*, tenant, policy: PolicyEnvelope | None = None, **data) -> None:
    """``policy_create``'s (or ``policy_update``'s) validation of ``data``, writing nothing: for the editor,
    which still shows every problem of the model when its form rejected some fields."""
    data = {k: v for k, v in data.items() if k in POLICY_FIELDS}
    validate_given(policy or PolicyEnvelope(tenant=tenant), data, POLICY_FIELDS, exclude=["tenant"])


def policy_delete(*, policy: PolicyEnvelope, actor: Actor | None = None) -> None:
    """Delete an envelope no instance uses (409 ``policy_attached`` otherwise; the PROTECT foreign key
    backs this in the database)."""
    actor = actor or current_actor()
    require_roles(actor, POLICY_WRITE_ROLES, "Deleting a policy")
    with transaction.atomic():
        policy = PolicyEnvelope.objects.select_for_update().get(pk=policy.pk)
        attached = PolicyAttachment.objects.filter(policy=policy).count()
        if attached:
            raise Conflict(
                f"Policy {policy.name} is attached to {attached} instance(s); detach it first.",
                code="policy_attached",
            )
        try:
            with transaction.atomic(), annotate(policy, actor=actor):
                policy.delete()
        except ProtectedError as exc:
            raise Conflict(f"Policy {policy.name} is attached to an instance.", code="policy_attached") from exc


def policy_attach(
    *, instance: AgentInstance, policy: PolicyEnvelope | None, actor: Actor | None = None
) -> AgentInstance:
    """Attach ``policy`` to ``instance`` (replacing any other), or detach with ``policy=None``.

    Compliance or admin. A policy of another tenant is a validation error (400), phrased like a missing
    one. The binding is the instance's ``PolicyAttachment``: attaching creates or repoints it (its record
    is POLICY_ATTACHED, with the policy's name and revision and the before/after policy), detaching
    deletes it (POLICY_DETACHED); the records name the instance's id.
    """
    actor = actor or current_actor()
    require_roles(actor, POLICY_WRITE_ROLES, "Attaching a policy")
    return _bind(instance, policy, actor)


def instance_create(*, tenant, policy: PolicyEnvelope | None = None, actor: Actor | None = None, **fields):
    """``registry.services.instance_create`` and the policy the instance starts under (the instance API's
    and the New instance form's ``policy``). Choosing it is part of deploying, so the deployer's roles
    suffice, as when the policy was a column of the instance. The policy is checked first; the instance
    and its attachment are two writes with a record each (the deployment gate's integrity record must
    stand even when the deployment is refused, so the two do not share one transaction)."""
    actor = actor or current_actor()
    if policy is not None and policy.tenant_id != tenant.pk:
        raise ValidationError({"policy": "Policy not found in this tenant."})
    instance = registry_services.instance_create(tenant=tenant, actor=actor, **fields)
    if policy is not None:
        instance = _bind(instance, policy, actor)
    return instance


def _bind(instance: AgentInstance, policy: PolicyEnvelope | None, actor: Actor) -> AgentInstance:
    if policy is not None and policy.tenant_id != instance.tenant_id:
        raise ValidationError({"policy": "Policy not found in this tenant."})
    with transaction.atomic():
        # The instance's row lock serializes attaches of one instance (no two inserts of its attachment).
        instance = AgentInstance.objects.select_for_update().get(pk=instance.pk)
        attachment = PolicyAttachment.objects.filter(pk=instance.pk).first()
        before = attachment.policy_id if attachment is not None else None
        if before == (policy.pk if policy is not None else None):
            _cache_attachment(instance, attachment)
            return instance
        if policy is None:
            with annotate(attachment, EventType.POLICY_DETACHED, actor=actor):
                attachment.delete()
            _cache_attachment(instance, None)
            return instance
        if attachment is None:
            attachment = PolicyAttachment(instance=instance, tenant_id=instance.tenant_id)
        attachment.policy = policy
        with annotate(
            attachment, EventType.POLICY_ATTACHED, actor=actor, policy_name=policy.name, revision=policy.revision
        ):
            attachment.save()
        _cache_attachment(instance, attachment)
    return instance


def _cache_attachment(instance: AgentInstance, attachment: PolicyAttachment | None) -> None:
    """What ``instance.policy_attachment`` answers from now on, without asking the database again."""
    PolicyAttachment._meta.get_field("instance").remote_field.set_cached_value(instance, attachment)


# ---------------------------------------------------------------- evaluation


def params_hash(params) -> str:
    """Lowercase hex SHA-256 of the RFC 8785 canonical JSON of ``params`` (what approvals bind to).

    Params an approval stores must come back (from SQLite's text or PostgreSQL's jsonb) as a value that
    re-hashes to the same hash, so numbers beyond ±(2^53-1) in any notation are refused, naming the path."""
    problem = json_problem(params, root="params")
    if problem:
        raise ValidationError({"params": f"{problem}."})
    try:
        return hashlib.sha256(rfc8785.dumps(params)).hexdigest()
    except (rfc8785.CanonicalizationError, TypeError, ValueError, OverflowError) as exc:
        raise ValidationError(
            {"params": f"Not representable as canonical JSON ({exc}); use finite numbers within ±(2^53-1)."}
        ) from exc


def policy_input(policy: PolicyEnvelope) -> PolicyInput:
    return PolicyInput(
        id=policy.pk,
        revision=policy.revision,
        autonomy_tier=policy.autonomy_tier,
        allowed_tools=tuple(policy.allowed_tools or ()),
        denied_tools=tuple(policy.denied_tools or ()),
        data_scopes=tuple(policy.data_scopes or ()),
        cost_limit_daily_usd=policy.cost_limit_daily_usd,
        cost_limit_monthly_usd=policy.cost_limit_monthly_usd,
        tool_risk_overrides=dict(policy.tool_risk_overrides or {}),
    )


def approval_input(approval_id, approval: ApprovalRequest | None) -> ApprovalInput:
    if approval is None:
        return ApprovalInput(id=approval_id, found=False)
    return ApprovalInput(
        id=approval.pk,
        status=approval.status,
        instance_id=approval.instance_id,
        tool=approval.tool,
        params_hash=approval.params_hash,
        expires_at=approval.expires_at,
        used_at=approval.used_at,
        decided_by=approval.decided_by_display(),
        estimated_cost_usd=approval.estimated_cost_usd,
        data_scopes=tuple(approval.data_scopes or ()),
        idempotency_key=approval.idempotency_key,
    )


def spend_periods(now: datetime) -> tuple[date, date]:
    """(today, first of this month), both UTC."""
    today = now.astimezone(UTC).date()
    return today, today.replace(day=1)


def spend_period(period: str, *, today: date, month: date, prefix: str = "") -> Q:
    """THE rule of which counter row counts: the day counter of ``today`` and the month counter of
    ``month`` (see ``spend_periods``). ``prefix`` reaches the counters through a relation (``spend__``)."""
    start = today if period == SpendPeriod.DAY else month
    return Q(**{f"{prefix}period": period, f"{prefix}period_start": start})


def spend_counters(*, today: date, month: date, tenant=None, instance_id=None):
    """THE spend-period query: the current day and month counters (``spend_period``) of one tenant
    and/or one instance. Evaluation (locked, per instance), the instance drawer and the Cost page all read
    the counters through it; evaluation's unlocked read joins the same rows to its instance query."""
    qs = InstanceSpend.objects.filter(
        spend_period(SpendPeriod.DAY, today=today, month=month)
        | spend_period(SpendPeriod.MONTH, today=today, month=month)
    )
    if tenant is not None:
        qs = qs.filter(tenant=tenant)
    if instance_id is not None:
        qs = qs.filter(instance_id=instance_id)
    return qs


def _ensure_spend_rows(instance, today: date, month: date, have: set) -> None:
    missing = [
        InstanceSpend(tenant_id=instance.tenant_id, instance_id=instance.pk, period=period, period_start=start)
        for period, start in ((SpendPeriod.DAY, today), (SpendPeriod.MONTH, month))
        if period not in have
    ]
    if missing:
        InstanceSpend.objects.bulk_create(missing, ignore_conflicts=True)


def _load_spend(instance, today: date, month: date, *, lock: bool) -> dict[str, tuple[Decimal, Decimal]]:
    """Spend so far per period: (sum of ALLOWed estimates, actual cost reported to the ledger), both from
    the one counter row per period (``ledger.ingest`` adds the actuals at ingestion). ``lock``: create
    the counters if needed and hold their row locks until the transaction ends, so the limit check and
    the increment cannot interleave with another call (or with an ingestion adding actuals). Unlocked,
    the counters came with the instance (``EVALUATION_INSTANCE``'s ``spend_*`` annotations, NULL when a
    period has no counter yet)."""
    if not lock:
        return {
            period: (estimated, actual)
            for period, estimated, actual in (
                (SpendPeriod.DAY, instance.spend_day_estimated, instance.spend_day_actual),
                (SpendPeriod.MONTH, instance.spend_month_estimated, instance.spend_month_actual),
            )
            if estimated is not None
        }
    locked = spend_counters(today=today, month=month, instance_id=instance.pk).select_for_update()
    rows = list(locked)
    if len(rows) < 2:
        _ensure_spend_rows(instance, today, month, {r.period for r in rows})
        rows = list(locked.all())  # read again: the first list is the queryset's cached result
    return {r.period: (r.amount_usd, r.actual_usd) for r in rows}


def _count_allowed(instance, today: date, month: date, amount: Decimal, have: set) -> None:
    """An ALLOWed call: +1 call and + its estimate on the instance's day and month spend counters (created
    first when ``have``, the periods read with counters, lacks one), and +1 on its template's and
    environment's day count (``DecisionDayCount``, created by the day's first call). Increments are ``F()``
    updates, so concurrent calls add up; rows are written in a fixed order (spend counters, then the day
    count), the order every write path takes."""
    if len(have) < 2:
        _ensure_spend_rows(instance, today, month, have)
    spend_counters(today=today, month=month, instance_id=instance.pk).update(
        amount_usd=F("amount_usd") + amount, allowed_calls=F("allowed_calls") + 1
    )
    day = {
        "tenant_id": instance.tenant_id,
        "day": today,
        "template_id": instance.version.template_id,
        "environment_id": instance.environment_id,
    }
    if not DecisionDayCount.objects.filter(**day).update(allowed_calls=F("allowed_calls") + 1):
        DecisionDayCount.objects.bulk_create([DecisionDayCount(**day, allowed_calls=0)], ignore_conflicts=True)
        DecisionDayCount.objects.filter(**day).update(allowed_calls=F("allowed_calls") + 1)


# The columns evaluation reads (one query): fewer columns, less to compile and fetch on the hot path.
EVALUATION_COLUMNS = (
    "id",
    "tenant_id",
    "state",
    "version_id",
    "environment_id",
    "version__template_id",
    "version__genome",
    "version__integrity_status",
    "version__version_label",
    "policy_attachment__policy_id",
    *(
        f"policy_attachment__policy__{f}"
        for f in (
            "revision",
            "autonomy_tier",
            "allowed_tools",
            "denied_tools",
            "data_scopes",
            "cost_limit_daily_usd",
            "cost_limit_monthly_usd",
            "approval_timeout_seconds",
            "tool_risk_overrides",
        )
    ),
)


def _evaluation_instance(tenant_id, pk, today: date, month: date, key: str | None = None):
    """The instance evaluation reads, with its version and policy and its current spend counters (two
    LEFT JOINs on the counters' unique key, ``spend_period``), and for a call with an idempotency key the
    call that key already names, if any (a LEFT JOIN on its unique key): one statement."""
    day = spend_period(SpendPeriod.DAY, today=today, month=month, prefix="spend__")
    month_ = spend_period(SpendPeriod.MONTH, today=today, month=month, prefix="spend__")
    relations = {
        "spend_day": FilteredRelation("spend", condition=day),
        "spend_month": FilteredRelation("spend", condition=month_),
    }
    columns = {
        "spend_day_estimated": F("spend_day__amount_usd"),
        "spend_day_actual": F("spend_day__actual_usd"),
        "spend_month_estimated": F("spend_month__amount_usd"),
        "spend_month_actual": F("spend_month__actual_usd"),
    }
    if key is not None:
        relations["keyed"] = FilteredRelation("idempotent_calls", condition=Q(idempotent_calls__key=key))
        columns.update({f"keyed_{name}": F(f"keyed__{name}") for name in KEYED_COLUMNS})
    return (
        AgentInstance.objects.select_related("version", "policy_attachment__policy")
        .only(*EVALUATION_COLUMNS)
        .annotate(**relations)
        .annotate(**columns)
        .filter(tenant_id=tenant_id, pk=pk)[:1]
    )


# What evaluation reads of the call an idempotency key names (``IdempotentCall``).
KEYED_COLUMNS = ("id", "tool", "params_hash", "data_scopes", "estimated_cost_usd", "decision_id")
# Read by every evaluation: compiled once per process (arm/compiled.py).
_EVALUATION_INSTANCE = CompiledQuery(_evaluation_instance, uuid.UUID, uuid.UUID, date, date)
_EVALUATION_INSTANCE_KEYED = CompiledQuery(_evaluation_instance, uuid.UUID, uuid.UUID, date, date, str)


@dataclass(frozen=True)
class Evaluation:
    """What ``policy_evaluate`` answers: the stored decision row and the approval it opened or used;
    ``replay`` when it is the answer an idempotency key already had (nothing was decided or counted
    again), ``decided_by`` the person who approved an ALLOW through an approval."""

    decision: PolicyDecision
    approval_id: object | None
    policy: dict | None
    replay: bool = False
    decided_by: str | None = None

    def as_response(self) -> dict:
        d = self.decision
        return {
            "decision": d.decision,
            "risk": d.risk,
            "reasons": d.reasons,
            "approval": str(self.approval_id) if self.approval_id else None,
            "decision_id": str(d.pk),
            "policy": self.policy,
            "replay": self.replay,
            "decided_by": self.decided_by,
        }


class _KeyRace(Exception):
    """A concurrent evaluation with the same idempotency key changed what the key answers between our read
    and our write: this evaluation is rolled back and runs again, and then answers from the key."""


KEY_RACE_ATTEMPTS = 3


def policy_evaluate(
    *,
    tenant,
    instance_id,
    tool: str,
    params: dict | None = None,
    data_scopes: list[str] | None = None,
    estimated_cost_usd: Decimal | None = None,
    approval_id=None,
    idempotency_key: str = "",
    actor: Actor | None = None,
) -> Evaluation:
    """Decide one tool call (SPEC §4) and apply what the decision implies, in one transaction:
    store the decision, open or reuse an approval for NEEDS_APPROVAL, consume a granting approval,
    and add an ALLOWed estimate to the instance's day and month spend counters.

    An ``idempotency_key`` names one call of the instance for its whole life (``_answer_from_key``): the
    key's first evaluation is decided and claims the key; later ones answer from what the key names (a
    replay, or the ALLOW through the call's approval once it is approved). ``tool`` may be the manifest
    name or the call name (``registry.genome.manifest_tool``); everything is stored under the manifest name.

    Queries: the instance with its version, policy and spend counters (and the key's call); the named
    approval (if any); the spend counters again, locked, when a limit must be checked against an
    increment; then the writes (and the key's claim).
    """
    started = time.perf_counter_ns()
    actor = actor or current_actor()
    call = _checked_call(
        actor,
        instance_id=instance_id,
        tool=tool,
        params=params,
        data_scopes=data_scopes,
        estimated_cost_usd=estimated_cost_usd,
        approval_id=approval_id,
        idempotency_key=idempotency_key,
    )
    for _attempt in range(KEY_RACE_ATTEMPTS):
        try:
            return _evaluate(tenant, call, actor, started)
        except _KeyRace:
            continue  # rolled back; the concurrent evaluation has committed what the key answers now
    raise Conflict(
        "Concurrent evaluations with this idempotency_key kept changing its answer; retry.", code="idempotency_busy"
    )


def _evaluate(tenant, call: _Call, actor: Actor, started: int) -> Evaluation:
    """One attempt of ``policy_evaluate``, in one transaction: the answer from the key when it names a call,
    else the decision (through the key's approval when it was approved), recorded with what it implies.
    Raises ``_KeyRace`` (rolled back) when a concurrent evaluation of the same key won a write first."""
    now = timezone.now()
    with transaction.atomic():
        context = _load_context(tenant, call, now)
        call = replace(call, tool=context.tool)  # the manifest name from here on
        through_key, approval = False, None
        if context.keyed is not None:
            answered, approval = _answer_from_key(tenant, call, context, now, actor, started)
            if answered is not None:
                return answered
            # The key's call was approved: it goes through its approval, once (checks 1-7 still run).
            call, through_key = replace(call, approval_id=approval.pk), True
        context = _load_limits_and_approval(tenant, call, context, now, approval=approval)
        inp = _engine_input(call, context, now)
        outcome = decide(inp)  # steps 1-9 and 11's conditions: a pure function of the input
        outcome, linked = _use_approval(call, context, inp, outcome, now, actor)  # step 11: used once
        if through_key and not (outcome.consume_approval and linked) and outcome.decision != Decision.DENY:
            raise _KeyRace  # the approval was used or expired meanwhile: answer from the key again
        reasons = list(outcome.reasons)
        if outcome.open_approval:  # step 10
            linked = _open_approval(tenant, call, context, outcome, reasons, now, actor)
        decision = _record_decision(tenant, call, context, inp, outcome, reasons, linked, actor, started)
        if through_key and outcome.decision == Decision.ALLOW:
            _move_key(context.keyed, decision)
        elif call.idempotency_key and not through_key:
            _claim_key(tenant, call, context, decision)
    policy = context.policy
    granted = context.approval if outcome.consume_approval and linked else None
    return Evaluation(
        decision=decision,
        approval_id=linked,
        policy={"id": str(policy.pk), "revision": policy.revision} if policy is not None else None,
        decided_by=granted.decided_by_display() if granted is not None else None,
    )


@dataclass(frozen=True)
class _Call:
    """One tool call as asked, checked and normalized (``_checked_call``)."""

    instance_id: object
    tool: str
    params: dict
    params_hash: str
    scopes: tuple[str, ...]
    estimate: Decimal | None
    approval_id: object | None
    idempotency_key: str

    @property
    def may_spend(self) -> bool:
        return self.estimate is not None and self.estimate > 0

    @property
    def scope_set(self) -> list[str]:
        """The data scopes as a set (sorted, once each): how approvals and keys store and compare them."""
        return sorted(set(self.scopes))


@dataclass(frozen=True)
class _KeyedCall:
    """The call an idempotency key already names (``IdempotentCall``), read with the instance."""

    id: object
    tool: str
    params_hash: str
    scopes: list
    estimate: Decimal | None
    decision_id: object


@dataclass(frozen=True)
class _Context:
    """What the call is decided against (``_load_context``): the instance with its version and policy,
    the tool's manifest name and risk, its spend so far per period, the call its idempotency key already
    names, and the approval it names (None when none or not found)."""

    instance: AgentInstance
    policy: PolicyEnvelope | None
    tool: str
    manifest_risk: str | None
    spend: dict[str, tuple[Decimal, Decimal]]
    keyed: _KeyedCall | None
    approval: ApprovalRequest | None
    today: date
    month: date


def _checked_call(
    actor: Actor, *, instance_id, tool, params, data_scopes, estimated_cost_usd, approval_id, idempotency_key
) -> _Call:
    """Who may ask and what was asked, before anything is read: the evaluating roles, a key bound to an
    instance asks only for it (403), then the request's shape (400): the tool's name, params a JSON object
    with a canonical hash, scopes non-empty strings, an estimate from 0 to ``MAX_ESTIMATE_USD``."""
    require_roles(actor, EVALUATE_ROLES, "Evaluating a tool call")
    bound = actor.bound_instance_id
    if bound is not None and str(bound) != str(instance_id):
        raise RoleRequired(
            "This API key is bound to another instance and may evaluate only for it.", code="instance_binding"
        )
    if not isinstance(tool, str) or not tool or len(tool) > MAX_TOOL_NAME_LENGTH:
        raise ValidationError({"tool": f"Give the tool's name, at most {MAX_TOOL_NAME_LENGTH} characters."})
    try:
        validate_name(tool)
    except ValidationError as exc:
        raise ValidationError({"tool": exc.messages}) from exc
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise ValidationError({"params": "Must be a JSON object."})
    scopes = tuple(data_scopes or ())
    if not all(isinstance(s, str) and s for s in scopes):
        raise ValidationError({"data_scopes": "Must be a list of non-empty strings."})
    estimate = Decimal(estimated_cost_usd) if estimated_cost_usd is not None else None
    if estimate is not None and (not estimate.is_finite() or not ZERO <= estimate <= MAX_ESTIMATE_USD):
        raise ValidationError({"estimated_cost_usd": f"Must be a decimal from 0 to {MAX_ESTIMATE_USD}."})
    if not isinstance(idempotency_key or "", str) or len(idempotency_key or "") > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValidationError({"idempotency_key": f"A string of at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters."})
    return _Call(
        instance_id=instance_id,
        tool=tool,
        params=params,
        params_hash=params_hash(params),
        scopes=scopes,
        estimate=estimate,
        approval_id=approval_id,
        idempotency_key=idempotency_key or "",
    )


def _load_context(tenant, call: _Call, now: datetime) -> _Context:
    """The instance with its version, policy and this period's spend counters, and the call the
    idempotency key already names (one statement; another tenant's or a malformed id is 404), and the
    manifest entry the tool names (by its name or its call name)."""
    today, month = spend_periods(now)
    try:
        instance_uuid = (
            call.instance_id if isinstance(call.instance_id, uuid.UUID) else uuid.UUID(str(call.instance_id))
        )
    except ValueError as exc:
        raise NotFound("Instance not found.") from exc
    if call.idempotency_key:
        instance = _EVALUATION_INSTANCE_KEYED.first(tenant.pk, instance_uuid, today, month, call.idempotency_key)
    else:
        instance = _EVALUATION_INSTANCE.first(tenant.pk, instance_uuid, today, month)
    if instance is None:
        raise NotFound("Instance not found.")
    keyed = None
    if getattr(instance, "keyed_id", None) is not None:
        keyed = _KeyedCall(
            id=instance.keyed_id,
            tool=instance.keyed_tool,
            params_hash=instance.keyed_params_hash,
            scopes=list(instance.keyed_data_scopes or []),
            estimate=instance.keyed_estimated_cost_usd,
            decision_id=instance.keyed_decision_id,
        )
    entry = manifest_tool(instance.version.genome, call.tool)
    return _Context(
        instance=instance,
        policy=attached_policy(instance),
        tool=entry["name"] if entry is not None else call.tool,
        manifest_risk=entry_risk(entry) if entry is not None else None,
        spend=_load_spend(instance, today, month, lock=False),
        keyed=keyed,
        approval=None,
        today=today,
        month=month,
    )


def _load_limits_and_approval(
    tenant, call: _Call, context: _Context, now: datetime, *, approval: ApprovalRequest | None = None
) -> _Context:
    """The spend counters again under lock when a limit must be checked against an increment, and the
    named approval (with the person behind its decider; ``approval`` when the key's call already read it),
    expired first when its deadline has passed.

    Lock order, the same in every write path: spend counters, then the approval row, then the tenant's
    audit chain head (change records), so concurrent evaluations cannot deadlock."""
    policy = context.policy
    has_limits = policy is not None and (
        policy.cost_limit_daily_usd is not None or policy.cost_limit_monthly_usd is not None
    )
    spend = context.spend
    if has_limits and call.may_spend:
        spend = _load_spend(context.instance, context.today, context.month, lock=True)
    if approval is None and call.approval_id is not None:
        try:
            approval_uuid = (
                call.approval_id if isinstance(call.approval_id, uuid.UUID) else uuid.UUID(str(call.approval_id))
            )
        except ValueError:
            approval_uuid = None  # named no approval that can exist: "not found"
        approval = None
        if approval_uuid is not None:
            # With the person behind its decider (``ApprovalRequest.decided_by_display``).
            approval = (
                ApprovalRequest.objects.filter(tenant_id=tenant.pk, pk=approval_uuid)
                .annotate(decider_principal=principal_expression("decided_by"))
                .first()
            )
        if approval is not None:
            approval.tenant = tenant
            approval_expire(approval=approval, now=now)
    return replace(context, spend=spend, approval=approval)


def _differences(keyed: _KeyedCall, call: _Call) -> list[str]:
    """What makes ``call`` another call than the one its idempotency key names."""
    asked = {
        "tool": (keyed.tool, call.tool),
        "params": (keyed.params_hash, call.params_hash),
        "data_scopes": (sorted(keyed.scopes), call.scope_set),
        "estimated_cost_usd": (keyed.estimate, call.estimate),
    }
    return [name for name, (before, now) in asked.items() if before != now]


def _answer_from_key(tenant, call: _Call, context: _Context, now: datetime, actor: Actor, started: int):
    """The answer to a call whose idempotency key already names a call (SPEC §11): another call under the
    key is a 409 ``idempotency_conflict``; an ALLOW or DENY is answered again (``replay``, nothing counted);
    a NEEDS_APPROVAL is answered by its approval as it is now: PENDING, the same NEEDS_APPROVAL; APPROVED and
    unused, the approval (the caller evaluates the call through it, once); used, the ALLOW that used it;
    DENIED, EXPIRED or WITHDRAWN, a DENY saying so, stored once as a decision and answered from then on.
    Returns (the answer, None) or (None, the approval to go through)."""
    keyed = context.keyed
    differs = _differences(keyed, call)
    if differs:
        raise Conflict(
            f"idempotency_key {call.idempotency_key!r} already names another call on this instance "
            f"(its {', '.join(differs)} differ); a new call needs a new key.",
            code="idempotency_conflict",
        )
    decision = (
        PolicyDecision.objects.select_related("approval")
        .annotate(decider_principal=principal_expression("approval__decided_by"))
        .get(pk=keyed.decision_id)
    )
    approval = decision.approval
    if approval is not None:
        approval.decider_principal = decision.decider_principal
        approval.tenant = tenant
    if decision.decision != Decision.NEEDS_APPROVAL or approval is None:
        return _replayed(decision, approval), None
    approval_expire(approval=approval, now=now)  # a PENDING request past its deadline expires (recorded)
    if approval.status == ApprovalStatus.PENDING:
        return _replayed(decision, approval), None
    if approval.status == ApprovalStatus.APPROVED and approval.used_at is None and approval.expires_at > now:
        return None, approval
    if approval.status == ApprovalStatus.APPROVED and approval.used_at is not None:
        used = PolicyDecision.objects.filter(approval_id=approval.pk, decision=Decision.ALLOW).first()
        if used is not None:  # used by a call that named it without the key: the key answers that ALLOW
            _move_key(keyed, used)
            return _replayed(used, approval), None
    refused = _refusal_decision(tenant, call, context, decision, approval, actor, started)
    _move_key(keyed, refused)
    return _replayed(refused, approval), None


def _replayed(decision: PolicyDecision, approval: ApprovalRequest | None) -> Evaluation:
    granted = approval is not None and decision.decision == Decision.ALLOW
    return Evaluation(
        decision=decision,
        approval_id=decision.approval_id,
        policy={"id": str(decision.policy_id), "revision": decision.policy_revision} if decision.policy_id else None,
        replay=True,
        decided_by=approval.decided_by_display() if granted else None,
    )


def _refusal_decision(tenant, call: _Call, context: _Context, asked, approval, actor: Actor, started: int):
    """The DENY a key's call gets once its approval was denied, expired (or approved but not used before
    its deadline) or withdrawn: stored like any decision, with the context of the decision that asked."""
    who = approval.decided_by_display()
    note = f": {approval.note}" if approval.note else "."
    if approval.status == ApprovalStatus.DENIED:
        reason = Reason(ReasonCode.APPROVAL_DENIED, f"Approval {approval.pk} was denied by {who}{note}")
    elif approval.status == ApprovalStatus.WITHDRAWN:
        reason = Reason(ReasonCode.APPROVAL_WITHDRAWN, f"Approval {approval.pk} was withdrawn by {who}{note}")
    elif approval.status == ApprovalStatus.APPROVED and approval.used_at is not None:
        reason = Reason(ReasonCode.APPROVAL_INVALID, f"Approval {approval.pk} was already used; it is single use.")
    elif approval.status == ApprovalStatus.APPROVED:
        reason = Reason(
            ReasonCode.APPROVAL_EXPIRED,
            f"Approval {approval.pk} was approved by {who} but not used before it expired at "
            f"{approval.expires_at.isoformat()}.",
        )
    else:
        reason = Reason(
            ReasonCode.APPROVAL_EXPIRED,
            f"Approval {approval.pk} expired at {approval.expires_at.isoformat()} before anyone decided it.",
        )
    decision = PolicyDecision(
        tenant_id=tenant.pk,
        instance_id=context.instance.pk,
        policy_id=asked.policy_id,
        policy_revision=asked.policy_revision,
        tool=call.tool,
        params=call.params,
        params_hash=call.params_hash,
        data_scopes=list(call.scopes),
        decision=Decision.DENY,
        risk=asked.risk,
        reasons=[reason.as_dict()],
        estimated_cost_usd=call.estimate,
        approval_id=approval.pk,
        actor=actor.ref,
        context=asked.context,
    )
    decision.duration_us = min((time.perf_counter_ns() - started) // 1000, 2**31 - 1)
    decision.save(force_insert=True)
    return decision


def _claim_key(tenant, call: _Call, context: _Context, decision: PolicyDecision) -> None:
    """The key's first decision names its call from now on. A concurrent first call with the same key that
    claimed it first wins: this evaluation is rolled back and answers from the key (``_KeyRace``)."""
    claim = IdempotentCall(
        tenant_id=tenant.pk,
        instance_id=context.instance.pk,
        key=call.idempotency_key,
        tool=call.tool,
        params_hash=call.params_hash,
        data_scopes=call.scope_set,
        estimated_cost_usd=call.estimate,
        decision_id=decision.pk,
    )
    try:
        with transaction.atomic():
            claim.save(force_insert=True)
    except IntegrityError as exc:
        raise _KeyRace from exc


def _move_key(keyed: _KeyedCall, decision: PolicyDecision) -> None:
    """The key answers ``decision`` from now on, if it still answered what we read (else ``_KeyRace``)."""
    if not IdempotentCall.objects.filter(pk=keyed.id, decision_id=keyed.decision_id).update(decision=decision.pk):
        raise _KeyRace


def _engine_input(call: _Call, context: _Context, now: datetime) -> EvaluationInput:
    """The call and its context as the plain data the decision function reads (``policies.engine``)."""
    instance, policy, spend = context.instance, context.policy, context.spend
    return EvaluationInput(
        instance_id=instance.pk,
        instance_state=instance.state,
        integrity_status=instance.version.integrity_status,
        tool=call.tool,
        manifest_risk=context.manifest_risk,
        policy=policy_input(policy) if policy is not None else None,
        params_hash=call.params_hash,
        now=now,
        data_scopes=call.scopes,
        estimated_cost_usd=call.estimate,
        spend_today_usd=spend.get(SpendPeriod.DAY, NO_SPEND)[0],
        spend_month_usd=spend.get(SpendPeriod.MONTH, NO_SPEND)[0],
        actual_today_usd=spend.get(SpendPeriod.DAY, NO_SPEND)[1],
        actual_month_usd=spend.get(SpendPeriod.MONTH, NO_SPEND)[1],
        approval=approval_input(call.approval_id, context.approval) if call.approval_id is not None else None,
        version_label=instance.version.version_label,
        idempotency_key=call.idempotency_key,
    )


def _use_approval(call: _Call, context: _Context, inp: EvaluationInput, outcome, now: datetime, actor: Actor):
    """(outcome, the approval it used). A decision granted by the named approval consumes it (single use,
    a conditional UPDATE); when another call used it (or it expired) between our read and our update, the
    call is decided again without it."""
    if not outcome.consume_approval:
        return outcome, None
    approval = context.approval
    if approval_consume(
        approval=approval,
        instance_id=context.instance.pk,
        tool=call.tool,
        params_hash=call.params_hash,
        now=now,
        actor=actor,
    ):
        return outcome, approval.pk
    return decide(replace(inp, approval=replace(inp.approval, used_at=now))), None


def _open_approval(tenant, call: _Call, context: _Context, outcome, reasons: list, now: datetime, actor: Actor):
    """The approval a NEEDS_APPROVAL decision opens (bound to the whole call: params, estimate, scopes), or
    the one already pending for the same call without a key, or for the same idempotency key: then a
    reason names it. Returns its id."""
    opened, created = approval_open(
        tenant=tenant,
        instance=context.instance,
        tool=call.tool,
        params=call.params,
        params_hash=call.params_hash,
        estimated_cost_usd=call.estimate,
        data_scopes=call.scope_set,
        risk=outcome.risk,
        reasons=[r.as_dict() for r in reasons],
        timeout_seconds=context.policy.approval_timeout_seconds,
        idempotency_key=call.idempotency_key,
        actor=actor,
        now=now,
    )
    if not created:
        same = "A request with this idempotency_key" if call.idempotency_key else "An identical request"
        reasons.append(
            Reason(
                ReasonCode.APPROVAL_PENDING,
                f"{same} is already pending: approval {opened.pk} (expires {opened.expires_at.isoformat()}).",
            )
        )
    return opened.pk


def _record_decision(
    tenant,
    call: _Call,
    context: _Context,
    inp: EvaluationInput,
    outcome,
    reasons: list,
    linked,
    actor: Actor,
    started: int,
) -> PolicyDecision:
    """An ALLOWed call's estimate (and count) goes onto the spend counters; then the decision row, with
    the context it was decided in (so a simulation can replay it) and the time the evaluation took."""
    instance, policy = context.instance, context.policy
    if outcome.decision == Decision.ALLOW:
        amount = call.estimate if call.may_spend else ZERO
        _count_allowed(instance, context.today, context.month, amount, set(context.spend))
    decision = PolicyDecision(
        tenant_id=tenant.pk,
        instance_id=instance.pk,
        policy_id=policy.pk if policy is not None else None,
        policy_revision=policy.revision if policy is not None else None,
        tool=call.tool,
        params=call.params,
        params_hash=call.params_hash,
        data_scopes=list(call.scopes),
        decision=outcome.decision,
        risk=outcome.risk,
        reasons=[r.as_dict() for r in reasons],
        estimated_cost_usd=call.estimate,
        approval_id=linked,
        actor=actor.ref,
        context={
            "instance_state": inp.instance_state,
            "integrity_status": inp.integrity_status,
            "spend_today_usd": str(inp.spend_today_usd),
            "spend_month_usd": str(inp.spend_month_usd),
            "actual_today_usd": str(inp.actual_today_usd),
            "actual_month_usd": str(inp.actual_month_usd),
        },
    )
    decision.duration_us = min((time.perf_counter_ns() - started) // 1000, 2**31 - 1)
    decision.save(force_insert=True)
    return decision


# ---------------------------------------------------------------- simulation

SIMULATION_DEFAULT_LIMIT = 1000
SIMULATION_MAX_LIMIT = 10000


def _proposed(policy: PolicyEnvelope, changes: dict) -> PolicyEnvelope:
    refuse_unknown(changes, POLICY_FIELDS)
    proposed = PolicyEnvelope(**{f.attname: getattr(policy, f.attname) for f in PolicyEnvelope._meta.concrete_fields})
    for key, value in changes.items():
        setattr(proposed, key, value)
    validate(proposed, exclude=["tenant"], unique=False)
    return proposed


def _replay_input(row: dict, instance: AgentInstance | None, policy: PolicyInput, *, now: datetime) -> EvaluationInput:
    ctx = row["context"] or {}
    version = instance.version if instance is not None else None
    return EvaluationInput(
        instance_id=row["instance_id"],
        instance_state=ctx.get("instance_state") or (instance.state if instance else ""),
        integrity_status=ctx.get("integrity_status") or (version.integrity_status if version else ""),
        tool=row["tool"],
        manifest_risk=tool_risk(version.genome, row["tool"]) if version is not None else None,
        policy=policy,
        params_hash=row["params_hash"],
        now=now,
        data_scopes=tuple(row["data_scopes"] or ()),
        estimated_cost_usd=row["estimated_cost_usd"],
        spend_today_usd=Decimal(ctx.get("spend_today_usd") or "0"),
        spend_month_usd=Decimal(ctx.get("spend_month_usd") or "0"),
        actual_today_usd=Decimal(ctx.get("actual_today_usd") or "0"),
        actual_month_usd=Decimal(ctx.get("actual_month_usd") or "0"),
        version_label=version.version_label if version is not None else "",
    )


def _counts(outcomes) -> dict:
    counts = {Decision.ALLOW.value: 0, Decision.DENY.value: 0, Decision.NEEDS_APPROVAL.value: 0}
    for outcome in outcomes:
        counts[outcome.decision] += 1
    return counts


def policy_simulate(
    *, policy: PolicyEnvelope, changes: dict, limit: int = SIMULATION_DEFAULT_LIMIT, actor: Actor | None = None
) -> dict:
    """What-if: replay the last ``limit`` decisions taken under ``policy`` through the same decision
    function, once with the envelope as it is and once with ``changes`` applied, and report the counts
    and the decisions that flip. Writes nothing.

    Each decision is replayed with its stored request (tool, params hash, scopes, estimate) and the
    instance as it was then (state, integrity, spend before the call, all stored with the decision),
    against the instance's version manifest. Approvals are left out: the comparison is of what the
    envelope itself decides.
    """
    actor = actor or current_actor()
    require_roles(actor, POLICY_WRITE_ROLES, "Simulating a policy change")
    if not isinstance(limit, int) or not 1 <= limit <= SIMULATION_MAX_LIMIT:
        raise ValidationError({"limit": f"Between 1 and {SIMULATION_MAX_LIMIT}."})
    proposed = _proposed(policy, changes)
    current_in, proposed_in = policy_input(policy), policy_input(proposed)
    rows = list(
        PolicyDecision.objects.filter(tenant_id=policy.tenant_id, policy_id=policy.pk)
        .order_by("-created_at", "-id")
        .values(
            "id",
            "instance_id",
            "tool",
            "params_hash",
            "data_scopes",
            "estimated_cost_usd",
            "context",
            "decision",
            "created_at",
        )[:limit]
    )
    instances = {
        i.pk: i for i in AgentInstance.objects.filter(pk__in={r["instance_id"] for r in rows}).select_related("version")
    }
    now = timezone.now()
    before_all, after_all, flips = [], [], []
    for row in rows:
        inp = _replay_input(row, instances.get(row["instance_id"]), current_in, now=now)
        before = decide(inp)
        after = decide(replace(inp, policy=proposed_in))
        before_all.append(before)
        after_all.append(after)
        if before.decision != after.decision:
            flips.append(
                {
                    "decision_id": str(row["id"]),
                    "instance": str(row["instance_id"]),
                    "tool": row["tool"],
                    "created_at": row["created_at"],
                    "recorded": row["decision"],
                    "before": before.decision,
                    "after": after.decision,
                    "reasons": after.reasons_as_dicts(),
                }
            )
    return {
        "policy": {"id": str(policy.pk), "revision": policy.revision},
        "changes": diff(_snapshot(policy), _snapshot(proposed)),
        "evaluated": len(rows),
        "counts": _counts(after_all),
        "current_counts": _counts(before_all),
        "flipped": len(flips),
        "flips": flips,
    }
