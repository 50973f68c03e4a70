"""Every write to approval requests: open (with de-duplication), decide, expire, consume.

Races are settled by the database, never by a Python check-then-write:
- two identical evaluations opening a request: the partial unique constraints let one insert win (the
  other's ``ON CONFLICT DO NOTHING`` writes nothing); the loser re-reads the winner's row;
- two deciders: ``UPDATE ... WHERE status = 'PENDING'`` changes one row for exactly one of them;
- two evaluations consuming one approval: ``UPDATE ... WHERE used_at IS NULL`` likewise.

Each of these writes is a save of the request (``arm.prepared``): its change record, annotated with the
event (APPROVAL_REQUESTED, _DECIDED, _EXPIRED, _USED), is appended only by the writer that changed the row.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from approvals.choices import ApprovalStatus
from approvals.models import EXPIRED_BY, ApprovalRequest
from approvals.waiting import notify_decided
from arm.choices import Role
from arm.context import Actor, current_actor
from arm.errors import Conflict
from arm.permissions import four_eyes_error, is_same_principal, require_roles
from arm.prepared import PreparedInsert, PreparedQuery, PreparedUpdate
from audit.choices import EventType
from audit.recording import annotate

DECIDER_ROLES = (Role.APPROVER,)
MAX_NOTE_LENGTH = 2000
EXPIRY_ACTOR = Actor.system(EXPIRED_BY)


def _pending(instance_id, tool: str, params_hash: str, idempotency_key: str | None = None):
    match = Q(tool=tool, params_hash=params_hash)
    if idempotency_key is not None:
        match |= Q(idempotency_key=idempotency_key)
    return ApprovalRequest.objects.filter(match, instance_id=instance_id, status=ApprovalStatus.PENDING)


# The PENDING request that holds off a new one for the same call or key (``arm.prepared``: compiled once,
# prepared on PostgreSQL); with and without an idempotency key.
PENDING_FOR_CALL = PreparedQuery(_pending, uuid.UUID, str, str)
PENDING_FOR_CALL_OR_KEY = PreparedQuery(_pending, uuid.UUID, str, str, str)


# The request a NEEDS_APPROVAL evaluation opens: written once per process, prepared on PostgreSQL, and
# skipped (not raised) when a concurrent identical evaluation's row holds the partial unique constraint
# first, so no savepoint is needed around it. An insert is a save: it gets the request's record.
INSERT_IF_NEW = PreparedInsert(ApprovalRequest, skip_conflicts=True)


def _pending_matches(*, instance_id, tool: str, params_hash: str, idempotency_key: str) -> list[ApprovalRequest]:
    if idempotency_key:
        rows = PENDING_FOR_CALL_OR_KEY.all(instance_id, tool, params_hash, idempotency_key)
    else:
        rows = PENDING_FOR_CALL.all(instance_id, tool, params_hash)
    # The idempotency key names the caller's intent most precisely: prefer its match.
    rows.sort(key=lambda a: 0 if idempotency_key and a.idempotency_key == idempotency_key else 1)
    return rows


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
    idempotency_key: str = "",
    actor: Actor | None = None,
    now: datetime | None = None,
) -> tuple[ApprovalRequest, bool]:
    """Open a request for one tool call, or return the PENDING one for the same call (same instance,
    tool and params hash) or the same idempotency key. Returns (request, created).

    Called inside the evaluation's transaction. The insert comes first: a new call, the common case, costs
    one statement; only when the partial unique constraints hold it off (a PENDING request for the same
    call or key: the caller's retry, or a concurrent identical evaluation's) is the existing request read.
    One already past its deadline is expired (it no longer blocks a new one) and the insert tried again.
    """
    actor = actor or current_actor()
    now = now or timezone.now()
    for _attempt in range(3):
        approval = ApprovalRequest(
            tenant=tenant,
            instance=instance,
            tool=tool,
            params=params,
            params_hash=params_hash,
            risk=risk,
            reasons=reasons,
            idempotency_key=idempotency_key or "",
            requester=actor.ref,
            requested_at=now,
            expires_at=now + timedelta(seconds=timeout_seconds),
        )
        with annotate(approval, EventType.APPROVAL_REQUESTED, actor=actor) as note:
            if INSERT_IF_NEW(approval):
                return approval, True
            note.withdraw()  # the same call is already PENDING: nothing was written
        for existing in _pending_matches(
            instance_id=instance.pk, tool=tool, params_hash=params_hash, idempotency_key=idempotency_key
        ):
            if existing.expires_at > now:
                return existing, False
            approval_expire(approval=existing, now=now)
    raise Conflict("Could not open or find the approval request; retry.", code="approval_conflict")


# The expiry: changes the request only while it is PENDING and due (written once, prepared on PostgreSQL).
EXPIRE_IF_DUE = PreparedUpdate(
    ApprovalRequest, "status", "decided_at", "decided_by", where=("status", "expires_at__lte")
)


def approval_expire(*, approval: ApprovalRequest, now: datetime | None = None) -> bool:
    """PENDING past its deadline → EXPIRED (auto-deny) with its change record. True when this call
    expired it (a conditional UPDATE, so concurrent readers record it once)."""
    now = now or timezone.now()
    if approval.status != ApprovalStatus.PENDING or approval.expires_at > now:
        return False
    with (
        transaction.atomic(),
        annotate(approval, EventType.APPROVAL_EXPIRED, actor=EXPIRY_ACTOR, expired_at=now) as expiry,
    ):
        expired = EXPIRE_IF_DUE(
            approval,
            where={"status": ApprovalStatus.PENDING, "expires_at__lte": now},
            status=ApprovalStatus.EXPIRED,
            decided_at=approval.expires_at,
            decided_by=EXPIRY_ACTOR.ref,
        )
        if not expired:
            expiry.withdraw()
            return False
        notify_decided(approval.pk)  # delivered to waiting runtimes when this commits
    return True


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


# The decision: changes the request only while it is PENDING and not yet due, so of racing deciders
# exactly one changes the row (written once, prepared on PostgreSQL).
DECIDE_IF_PENDING = PreparedUpdate(
    ApprovalRequest, "status", "decided_by", "decided_at", "note", where=("status", "expires_at__gt")
)


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
    with transaction.atomic(), annotate(approval, EventType.APPROVAL_DECIDED, actor=actor) as decision:
        updated = DECIDE_IF_PENDING(
            approval,
            where={"status": ApprovalStatus.PENDING, "expires_at__gt": now},
            status=status,
            decided_by=actor.ref,
            decided_at=now,
            note=note,
        )
        if not updated:
            decision.withdraw()
        else:
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


# The single use: marks the request used only while it is APPROVED for exactly this call, unused and not yet
# due (written once, prepared on PostgreSQL).
USE_IF_GRANTED = PreparedUpdate(
    ApprovalRequest,
    "used_at",
    where=("instance", "tool", "params_hash", "status", "used_at__isnull", "expires_at__gt"),
)


def approval_consume(
    *, approval: ApprovalRequest, instance_id, tool: str, params_hash: str, now: datetime, actor: Actor
) -> bool:
    """Mark an APPROVED, unexpired, unused request used for exactly this call, with an APPROVAL_USED
    record. True for the one caller whose conditional UPDATE changed the row (single use, even under
    concurrency)."""
    with annotate(approval, EventType.APPROVAL_USED, actor=actor) as use:
        used = USE_IF_GRANTED(
            approval,
            where={
                "instance": instance_id,
                "tool": tool,
                "params_hash": params_hash,
                "status": ApprovalStatus.APPROVED,
                "used_at__isnull": True,
                "expires_at__gt": now,
            },
            used_at=now,
        )
        if not used:
            use.withdraw()
    return bool(used)
