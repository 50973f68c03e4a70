"""Reads of approval requests that are more than a filter: who may see which, and the status as of now.

Reads never expire anything: a PENDING request past its deadline reads as EXPIRED (``status_q`` in
filters, ``ApprovalRequest.as_of`` in what is shown) until the background path (``manage.py
expire_approvals``), a decision or an evaluation naming it writes the expiry with its record."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import Q, QuerySet

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from tenancy.choices import READ_ROLES, Role
from tenancy.context import Actor
from tenancy.permissions import principal_expression


def approvals_visible_to(actor: Actor, tenant) -> QuerySet[ApprovalRequest]:
    """Tenant members with a read role see every request of the tenant. A runtime key sees only its
    own: a key bound to an instance, that instance's requests; an unbound key, the ones it requested
    (that is how an agent polls for a decision). Each is read with the person behind its decider
    (``ApprovalRequest.decided_by_display``)."""
    qs = with_decider(ApprovalRequest.objects.filter(tenant=tenant))
    if actor.has_any(READ_ROLES):
        return qs
    if Role.RUNTIME in actor.roles:
        bound = actor.bound_instance_id
        return qs.filter(instance_id=bound) if bound is not None else qs.filter(requester=actor.ref)
    return qs.none()


def with_decider(qs: QuerySet[ApprovalRequest]) -> QuerySet[ApprovalRequest]:
    """``decider_principal``: the person behind each request's decider, read with the row (a subquery)."""
    return qs.annotate(decider_principal=principal_expression("decided_by"))


def pending_count(tenant, now: datetime) -> int:
    """How many requests of ``tenant`` wait for a decision at ``now`` (one indexed COUNT; an overdue
    request no longer waits for anyone: it reads as EXPIRED)."""
    return ApprovalRequest.objects.filter(status_q([ApprovalStatus.PENDING], now), tenant=tenant).count()


def status_q(statuses, now: datetime) -> Q:
    """Requests whose status, as readers see it at ``now`` (``ApprovalRequest.as_of``), is one of
    ``statuses``: PENDING means not yet overdue, EXPIRED includes PENDING rows past their deadline. Served
    by the (status, expires_at) index; nothing is written."""
    q = Q(pk__in=[])
    for status in statuses:
        if status == ApprovalStatus.PENDING:
            q |= Q(status=ApprovalStatus.PENDING, expires_at__gt=now)
        elif status == ApprovalStatus.EXPIRED:
            q |= Q(status=ApprovalStatus.EXPIRED) | Q(status=ApprovalStatus.PENDING, expires_at__lte=now)
        else:
            q |= Q(status=status)
    return q


def approvals_pending(actor: Actor, tenant, now: datetime) -> QuerySet[ApprovalRequest]:
    """What still waits for a decision at ``now`` (overdue requests are left out, not expired here)."""
    return approvals_visible_to(actor, tenant).filter(status_q([ApprovalStatus.PENDING], now))


def approvals_decided(actor: Actor, tenant, now: datetime) -> QuerySet[ApprovalRequest]:
    """The history: every request that is not pending at ``now`` (overdue ones read as EXPIRED)."""
    return approvals_visible_to(actor, tenant).exclude(status_q([ApprovalStatus.PENDING], now))


def approval_to_decide(tenant, pk: uuid.UUID) -> ApprovalRequest | None:
    """The request ``pk`` of ``tenant`` (None when there is none) with ``requester_principal``, the
    principal behind its requester (``tenancy.permissions.principal_of``), for ``approval_decide``. Every
    reader with a read role sees the whole tenant's requests (``approvals_visible_to``), and deciders hold one."""
    return (
        ApprovalRequest.objects.filter(tenant_id=tenant.pk, pk=pk)
        .annotate(requester_principal=principal_expression("requester"))
        .first()
    )
