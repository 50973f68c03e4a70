"""factory-boy factories for every model. Rows are created directly (fast); tests of a service call
the service itself."""

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from registry.choices import EnvironmentTier, ProviderType
from registry.genome import genome_hash as hash_of_genome
from registry.models import AgentInstance, AgentTemplate, AgentVersion, Environment, Provider
from tenancy.models import ApiKey, Membership, Tenant


def make_genome(tools=None, model="gpt-4.1", **extra) -> dict:
    genome = {
        "model_config": {"provider": "openai", "name": model, "parameters": {"temperature": 0.2}},
        "prompt_bundle_hash": "sha256:" + "ab" * 32,
        "tool_manifest": tools
        if tools is not None
        else [
            {"name": "crm.lookup", "version": "1.2.0", "risk": "low", "data_scopes": ["crm:read"]},
            {"name": "email.send", "risk": "high"},
        ],
    }
    genome.update(extra)
    return genome


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("pw-for-tests-123")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    roles = factory.LazyFunction(lambda: ["viewer"])


def make_api_key(tenant, roles, instance=None, name="test key") -> tuple[ApiKey, str]:
    full, prefix, key_hash = ApiKey.generate()
    key = ApiKey.objects.create(tenant=tenant, name=name, prefix=prefix, key_hash=key_hash, roles=list(roles))
    if instance is not None:  # the binding is registry's (registry.InstanceKey)
        from registry.models import InstanceKey

        InstanceKey.objects.create(key=key, tenant=tenant, instance=instance)
    return key, full


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"env-{n}")
    tier = EnvironmentTier.DEV


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Provider

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"provider-{n}")
    type = ProviderType.LOCAL


class TemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentTemplate

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"agent-{n}")
    owners = factory.LazyFunction(lambda: ["owner@example.com"])
    tags = factory.LazyFunction(lambda: ["support"])
    created_by = "user:factory"


class VersionFactory(factory.django.DjangoModelFactory):
    """A version with a correct hash. ``lifecycle_state`` may be given directly (bypassing the FSM)
    to set up a test; the transition tests go through the service."""

    class Meta:
        model = AgentVersion

    tenant = factory.LazyAttribute(lambda o: o.template.tenant)
    template = factory.SubFactory(TemplateFactory)
    version_label = factory.Sequence(lambda n: f"1.0.{n}")
    genome = factory.LazyFunction(make_genome)
    genome_hash = factory.LazyAttribute(lambda o: hash_of_genome(o.genome))
    created_by = "user:factory"


class InstanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentInstance
        skip_postgeneration_save = True

    tenant = factory.LazyAttribute(lambda o: o.version.tenant)
    version = factory.SubFactory(VersionFactory)
    environment = factory.LazyAttribute(lambda o: EnvironmentFactory(tenant=o.tenant))
    provider = factory.LazyAttribute(lambda o: ProviderFactory(tenant=o.tenant))
    name = factory.Sequence(lambda n: f"instance-{n}")
    created_by = "user:factory"

    @factory.post_generation
    def policy(self, create, policy, **kwargs):
        """``policy=``: the policy the instance runs under (its ``policies.PolicyAttachment``, recorded)."""
        if policy is not None and create:
            from policies.models import PolicyAttachment

            PolicyAttachment.objects.create(instance=self, tenant_id=self.tenant_id, policy=policy)


def heartbeat_now():
    return timezone.now()
