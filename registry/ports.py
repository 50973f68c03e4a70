"""What registry asks of the apps above it, without importing them.

An instance runs under a policy envelope, but policies sit above registry (they read versions and
instances to decide). So registry declares here what it needs of them (the tenant's policies to choose
from, one of them by id, attaching one to an instance) and ``policies`` plugs its implementation in at
startup (``PoliciesConfig.ready``). Registry's API and UI call ``instance_policies()``; the rule for
attaching stays in ``policies.services.policy_attach``.
"""

from __future__ import annotations

from typing import Protocol

from django.core.exceptions import ImproperlyConfigured


class InstancePolicies(Protocol):
    def choices(self, tenant):
        """The tenant's policies, ordered by name (a queryset)."""

    def get(self, tenant, policy_id):
        """The tenant's policy with this id, or None."""

    def attach(self, *, instance, policy, actor):
        """Attach ``policy`` (None detaches) to ``instance``; returns the instance."""


_instance_policies: InstancePolicies | None = None


def register_instance_policies(implementation: InstancePolicies) -> None:
    global _instance_policies
    _instance_policies = implementation


def instance_policies() -> InstancePolicies:
    if _instance_policies is None:
        raise ImproperlyConfigured("No app provides instance policies: add 'policies' to INSTALLED_APPS.")
    return _instance_policies
