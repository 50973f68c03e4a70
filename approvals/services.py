"""Every write to approval requests: open (with de-duplication), decide, expire, consume, withdraw.

Races are settled by the database, never by a Python check-then-write:
- two identical evaluations opening a request: the partial unique constraints let one insert win (the
  other's insert fails in its savepoint); the loser re-reads the winner's row;
- two deciders (or a decider and the withdrawing runtime): the row is read locked only while it is still
  PENDING (``recorded_update``), so exactly one of them finds it so and writes;
- two evaluations consuming one approval: likewise, only while it is unused.

Each of these writes has its change record, annotated with the event (APPROVAL_REQUESTED, _DECIDED,
_EXPIRED, _USED, _WITHDRAWN), appended only by the writer that changed the row.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.choices import ApprovalStatus
from approvals.models import EXPIRED_BY, ApprovalRequest
from approvals.waiting import notify_decided
from arm.errors import Conflict, RoleRequired
from arm.recording import annotate
from audit.choices import EventType
from audit.recording import recorded_update
from tenancy.choices import Role
from tenancy.context import Actor, current_actor
from tenancy.permissions import four_eyes_error, is_same_principal, require_roles

DECIDER_ROLES = (Role.APPROVER,)
MAX_NOTE_LENGTH = 2000
EXPIRY_ACTOR = Actor.system(EXPIRED_BY)


def _pending_matches(*, instance_id, tool: str, params_hash: str, idempotency_key: str) -> list[ApprovalRequest]:
    """The PENDING request that holds off a new one: for a call without a key, the identical call's without a
    key; for a call with one, that key's. Calls with their own keys are different calls, however alike
    (parallel identical calls of an agent each get their request)."""
    pending = ApprovalRequest.objects.filter(instance_id=instance_id, status=ApprovalStatus.PENDING)
    if idempotency_key:
        return list(pending.filter(idempotency_key=idempotency_key))
    return list(pending.filter(tool=tool, params_hash=params_hash, idempotency_key=""))


def _write_if(approval: ApprovalRequest, event: str, *, where: dict, actor: Actor, extra=None, **values) -> bool:
    """Write ``values`` onto ``approval`` only while its row still matches ``where``: ``recorded_update``
    reads the row locked, so of racing writers exactly one changes it, and that one's change record is
    annotated with ``event``. True when this call changed the row (``approval`` then carries the values)."""
    changed = recorded_update(
        ApprovalRequest.objects.filter(pk=approval.pk, **where), event=event, actor=actor, extra=extra, **values
    )
    if changed:
        for name, value in values.items():
            approval.__dict__[ApprovalRequest._meta.get_field(name).attname] = value
        approval.snapshot(values)
    return bool(changed)


def _same_call(approval: ApprovalRequest, tool: str, params_hash: str, estimate, scopes: list[str]) -> bool:
    return (approval.tool, approval.params_hash, approval.estimated_cost_usd, sorted(approval.data_scopes or [])) == (
        tool,
        params_hash,
        estimate,
        scopes,
    )


def approval_open(
    *,
    tenant,
    instance,
    tool: str,
    params: dict,
    params_hash: str,
    risk: str,
    reasons: list[dict],
    timeout_seconds: int,
    estimated_cost_usd: Decimal | None = None,
    data_scopes: list[str] | None = None,
    idempotency_key: str = "",
    actor: Actor | None = None,
    now: datetime | None = None,
) -> tuple[ApprovalRequest, bool]:
    """Open a request for one tool call, bound to the whole call (params, the estimate at most, the data
    scopes at most), or return the PENDING one of the same call: without an idempotency key, the identical
    call's without a key (same instance, tool and params hash); with one, that key's (409
    ``idempotency_conflict`` when the key's request is for another call). Returns (request, created).

    Called inside the evaluation's transaction. The insert comes first: a new call, the common case, costs
    one statement; only when the partial unique constraints hold it off (a PENDING request for the same
    call or key: the caller's retry, or a concurrent identical evaluation's) is the existing request read.
    One already past its deadline is expired (it no longer blocks a new one) and the insert tried again.
    """
    actor = actor or current_actor()
    now = now or timezone.now()
    scopes = sorted(set(data_scopes or ()))
    for _attempt in range(3):
        approval = ApprovalRequest(
            tenant=tenant,
            instance=instance,
            tool=tool,
            params=params,
            params_hash=params_hash,
            estimated_cost_usd=estimated_cost_usd,
            data_scopes=scopes,
            risk=risk,
            reasons=reasons,
            idempotency_key=idempotency_key or "",
            requester=actor.ref,
            requested_at=now,
            expires_at=now + timedelta(seconds=timeout_seconds),
        )
        try:
            with transaction.atomic(), annotate(approval, EventType.APPROVAL_REQUESTED, actor=actor):
                approval.save(force_insert=True)
            return approval, True
        except IntegrityError:
            pass  # the same call (or key) is already PENDING (the partial unique constraints): read it
        for existing in _pending_matches(
            instance_id=instance.pk, tool=tool, params_hash=params_hash, idempotency_key=idempotency_key
        ):
            if existing.expires_at <= now:
                approval_expire(approval=existing, now=now)
            elif idempotency_key and not _same_call(existing, tool, params_hash, estimated_cost_usd, scopes):
                raise Conflict(
                    f"idempotency_key {idempotency_key!r} already names another call on this instance (pending "
                    f"approval {existing.pk}); a new call needs a new key.",
                    code="idempotency_conflict",
                )
            else:
                return existing, False
    raise Conflict("Could not open or find the approval request; retry.", code="approval_conflict")


def approval_expire(*, approval: ApprovalRequest, now: datetime | None = None) -> bool:
    """PENDING past its deadline → EXPIRED (auto-deny) with its change record. True when this call
    expired it (a conditional UPDATE, so concurrent readers record it once)."""
    now = now or timezone.now()
    if approval.status != ApprovalStatus.PENDING or approval.expires_at > now:
        return False
    with transaction.atomic():
        expired = _write_if(
            approval,
            EventType.APPROVAL_EXPIRED,
            where={"status": ApprovalStatus.PENDING, "expires_at__lte": now},
            actor=EXPIRY_ACTOR,
            extra={"expired_at": now},
            status=ApprovalStatus.EXPIRED,
            decided_at=approval.expires_at,
            decided_by=EXPIRY_ACTOR.ref,
        )
        if expired:
            notify_decided(approval.pk)  # delivered to waiting runtimes when this commits
    return expired


def approvals_expire_due(*, tenant=None, now: datetime | None = None) -> int:
    """Expire every PENDING request past its deadline (one tenant, or all); returns how many."""
    now = now or timezone.now()
    due = ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING, expires_at__lte=now)
    if tenant is not None:
        due = due.filter(tenant=tenant)
    expired = 0
    for approval in due.select_related("tenant").order_by("expires_at").iterator(chunk_size=500):
        expired += approval_expire(approval=approval, now=now)
    return expired


def approval_decide(
    *, approval: ApprovalRequest, approve: bool, note: str = "", actor: Actor | None = None
) -> ApprovalRequest:
    """Approve or deny a PENDING request (approver or admin; never the requester).

    Not PENDING → 409 ``already_decided``; past its deadline → it expires (recorded) and 409 ``expired``.
    Racing deciders: the conditional UPDATE changes the row for exactly one of them. An ``approval`` read
    with ``selectors.approval_to_decide`` carries the principal behind its requester, which saves the
    four-eyes check a key lookup.
    """
    actor = actor or current_actor()
    require_roles(actor, DECIDER_ROLES, "Deciding an approval request")
    note = (note or "").strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise ValidationError({"note": f"At most {MAX_NOTE_LENGTH} characters."})
    known = getattr(approval, "requester_principal", None)
    if is_same_principal(actor, approval.requester, {approval.requester: known} if known else None):
        raise four_eyes_error(actor, approval.requester, did="requested this approval", cannot="decide it")
    now = timezone.now()
    approval_expire(approval=approval, now=now)  # commits on its own: the expiry stands even though we refuse
    _refuse_unless_pending(approval)
    status = ApprovalStatus.APPROVED if approve else ApprovalStatus.DENIED
    with transaction.atomic():
        if _write_if(
            approval,
            EventType.APPROVAL_DECIDED,
            where={"status": ApprovalStatus.PENDING, "expires_at__gt": now},
            actor=actor,
            status=status,
            decided_by=actor.ref,
            decided_at=now,
            note=note,
        ):
            notify_decided(approval.pk)  # delivered to waiting runtimes when this commits
            return approval
    # Lost a race (another decider, or the deadline passed meanwhile): say which.
    approval.refresh_from_db()
    approval_expire(approval=approval, now=now)
    _refuse_unless_pending(approval)
    raise Conflict("This approval request was decided concurrently.", code="already_decided")


def _refuse_unless_pending(approval: ApprovalRequest) -> None:
    if approval.status == ApprovalStatus.EXPIRED:
        raise Conflict(
            f"Approval {approval.pk} expired at {approval.expires_at.isoformat()} and can no longer be decided.",
            code="expired",
        )
    if approval.status != ApprovalStatus.PENDING:
        raise Conflict(
            f"Approval {approval.pk} is already {approval.status} (by {approval.decided_by}).",
            code="already_decided",
        )


def approval_consume(
    *, approval: ApprovalRequest, instance_id, tool: str, params_hash: str, now: datetime, actor: Actor
) -> bool:
    """Mark an APPROVED, unexpired, unused request used for exactly this call, with an APPROVAL_USED
    record. True for the one caller whose conditional UPDATE changed the row (single use, even under
    concurrency)."""
    return _write_if(
        approval,
        EventType.APPROVAL_USED,
        where={
            "instance": instance_id,
            "tool": tool,
            "params_hash": params_hash,
            "status": ApprovalStatus.APPROVED,
            "used_at__isnull": True,
            "expires_at__gt": now,
        },
        actor=actor,
        used_at=now,
    )


def may_withdraw(actor: Actor, approval: ApprovalRequest) -> bool:
    """The runtime that opened a request may withdraw it: a key bound to its instance, the key (or user)
    that opened it, or the person behind that key (``tenancy.permissions.is_same_principal``)."""
    bound = actor.bound_instance_id
    if bound is not None and str(bound) == str(approval.instance_id):
        return True
    return is_same_principal(actor, approval.requester)


def approval_withdraw(*, approval: ApprovalRequest, note: str = "", actor: Actor | None = None) -> ApprovalRequest:
    """PENDING -> WITHDRAWN (terminal) by the runtime that opened it (``may_withdraw``, else 403
    ``not_requester``), with an APPROVAL_WITHDRAWN record; ``decided_by``/``decided_at`` name who withdrew it
    and when (``withdrawn_at`` too). It leaves the pending queue, and waiters are told when it commits.

    Not PENDING -> 409 ``not_pending`` (past its deadline it expires first, recorded). A decision racing
    the withdrawal: the conditional UPDATE changes the row for exactly one of them."""
    actor = actor or current_actor()
    note = (note or "").strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise ValidationError({"note": f"At most {MAX_NOTE_LENGTH} characters."})
    if not may_withdraw(actor, approval):
        raise RoleRequired(
            "Only the runtime that opened this request (a key bound to its instance, or the key that opened it) "
            "or the person behind it may withdraw it.",
            code="not_requester",
        )
    now = timezone.now()
    approval_expire(approval=approval, now=now)  # commits on its own: the expiry stands even though we refuse
    _refuse_withdraw_unless_pending(approval)
    with transaction.atomic():
        if _write_if(
            approval,
            EventType.APPROVAL_WITHDRAWN,
            where={"status": ApprovalStatus.PENDING, "expires_at__gt": now},
            actor=actor,
            status=ApprovalStatus.WITHDRAWN,
            decided_by=actor.ref,
            decided_at=now,
            withdrawn_at=now,
            note=note,
        ):
            notify_decided(approval.pk)  # delivered to waiting runtimes when this commits
            return approval
    # Lost a race (a decider, or the deadline passed meanwhile): say which.
    approval.refresh_from_db()
    approval_expire(approval=approval, now=now)
    _refuse_withdraw_unless_pending(approval)
    raise Conflict("This approval request was decided concurrently.", code="not_pending")


def _refuse_withdraw_unless_pending(approval: ApprovalRequest) -> None:
    if approval.status != ApprovalStatus.PENDING:
        by = f" (by {approval.decided_by})" if approval.decided_by else ""
        raise Conflict(
            f"Approval {approval.pk} is {approval.status}{by}; only a PENDING request can be withdrawn.",
            code="not_pending",
        )
