"""Fixtures for the operator UI view tests: a small world in the main tenant and in another tenant,
and Django test clients signed in as members of the cast."""

from dataclasses import dataclass

import pytest
from django.test import Client

from registry.choices import EnvironmentTier, EvalStatus, InstanceState, VersionState
from tests.factories import (
    EnvironmentFactory,
    InstanceFactory,
    ProviderFactory,
    TemplateFactory,
    VersionFactory,
    make_genome,
)
from tests.policies.factories import TOOLS, PolicyFactory, make_approval


@dataclass
class World:
    tenant: object
    dev: object
    staging: object
    prod: object
    provider: object
    template: object
    root: object  # APPROVED, eval PASS
    child: object  # DRAFT, parent = root
    instance: object
    policy: object
    approval: object


def build_world(tenant, prefix: str = "") -> World:
    dev = EnvironmentFactory(tenant=tenant, name=f"{prefix}dev", tier=EnvironmentTier.DEV)
    staging = EnvironmentFactory(tenant=tenant, name=f"{prefix}staging", tier=EnvironmentTier.STAGING)
    prod = EnvironmentFactory(tenant=tenant, name=f"{prefix}prod", tier=EnvironmentTier.PROD)
    provider = ProviderFactory(tenant=tenant, name=f"{prefix}local")
    template = TemplateFactory(tenant=tenant, name=f"{prefix}support-bot", tags=["support", "customer-facing"])
    genome = make_genome(tools=TOOLS)
    root = VersionFactory(
        template=template,
        version_label="1.0.0",
        genome=genome,
        lifecycle_state=VersionState.APPROVED,
        eval_status=EvalStatus.PASS,
    )
    child = VersionFactory(template=template, version_label="1.1.0", parent=root, genome=make_genome(model="gpt-5"))
    policy = PolicyFactory(tenant=tenant, name=f"{prefix}standard", autonomy_tier=2)
    instance = InstanceFactory(
        version=root,
        environment=prod,
        provider=provider,
        policy=policy,
        name=f"{prefix}support-eu-1",
        state=InstanceState.ACTIVE,
    )
    approval = make_approval(instance, tool="email.send", params={"to": "ceo@example.com"})
    return World(tenant, dev, staging, prod, provider, template, root, child, instance, policy, approval)


@pytest.fixture
def world(tenant):
    return build_world(tenant)


@pytest.fixture
def other_world(other_tenant):
    return build_world(other_tenant, prefix="gx-")


@pytest.fixture
def login():
    """``login(member)`` → a Django test client signed in as that member's user."""

    def make(member, *, enforce_csrf: bool = False) -> Client:
        client = Client(enforce_csrf_checks=enforce_csrf)
        member.user.refresh_from_db()  # the factory does not save the password it sets
        client.force_login(member.user)
        return client

    return make
