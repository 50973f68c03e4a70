"""Reads of approval requests that are more than a filter: who may see which."""

from __future__ import annotations

from django.db.models import QuerySet

from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from arm.choices import READ_ROLES, Role
from arm.context import Actor


def approvals_visible_to(actor: Actor, tenant) -> QuerySet[ApprovalRequest]:
    """Tenant members with a read role see every request of the tenant. A runtime key sees only its
    own: a key bound to an instance, that instance's requests; an unbound key, the ones it requested
    (that is how an agent polls for a decision)."""
    qs = ApprovalRequest.objects.filter(tenant=tenant)
    if actor.has_any(READ_ROLES):
        return qs
    if Role.RUNTIME in actor.roles:
        bound = actor.bound_instance_id
        return qs.filter(instance_id=bound) if bound is not None else qs.filter(requester=actor.ref)
    return qs.none()


def pending_count(tenant) -> int:
    """How many requests of ``tenant`` wait for a decision (one indexed COUNT)."""
    return ApprovalRequest.objects.filter(tenant=tenant, status=ApprovalStatus.PENDING).count()
