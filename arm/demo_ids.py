"""The ids of the demo's configured objects (``manage.py seed_demo``: acme's environments, providers,
templates, versions and instances; every demo tenant's policies, budgets and announced price): derived from
the tenant, the kind and the name, so the API reference's examples (``arm.schema_examples``) can name real
objects and work when tried in the demo. Objects the system produces (decisions, approvals, change records,
API keys) keep random ids; the reference says which list to take those from."""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("5d3c7a62-8f0e-4c55-9a47-2b1e6f0d9c31")


def demo_id(kind: str, name: str, tenant: str = "acme") -> uuid.UUID:
    """The id ``seed_demo`` gives the ``kind`` (environment, provider, template, version, instance, policy,
    price, budget) named ``name`` in ``tenant``. A version is named ``<template>@<label>``."""
    return uuid.uuid5(NAMESPACE, f"{tenant}/{kind}/{name}")
