"""Registry races settled by the database (PostgreSQL only: SQLite serializes every writer anyway, and
its DELETE-based flush is blocked by the audit triggers in transactional tests)."""

import pytest
from django.db import connection

from arm.errors import Conflict
from audit.choices import EventType
from audit.models import ChangeRecord
from audit.services import verify_chain
from registry import services
from registry.choices import EnvironmentTier, InstanceState, IntegrityStatus
from registry.models import AgentInstance, AgentTemplate, AgentVersion
from tenancy.context import Actor
from tests.factories import EnvironmentFactory, ProviderFactory, TemplateFactory, VersionFactory, make_genome
from tests.helpers import member_with, race, tamper_genome

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (row locks across connections)"),
    pytest.mark.django_db(transaction=True),
]


def test_one_label_per_template_when_creators_race(tenant):
    template = TemplateFactory(tenant=tenant)
    clients = [member_with(tenant, ["operator"], f"op-{i}").client for i in range(4)]
    body = {"template": str(template.pk), "version_label": "2.0.0", "genome": make_genome()}

    responses = race([lambda c=c: c.post("/api/v1/versions/", body, format="json") for c in clients])

    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409], [r.json() for r in responses]
    for loser in (r for r in responses if r.status_code == 409):
        assert loser.json()["code"] == "conflict" and "version_label" in loser.json()["errors"]
    assert AgentVersion.objects.filter(template=template, version_label="2.0.0").count() == 1
    assert ChangeRecord.objects.filter(event_type=EventType.VERSION_CREATED).count() == 1
    assert verify_chain(tenant).ok


def test_one_template_name_per_tenant_when_creators_race(tenant):
    clients = [member_with(tenant, ["operator"], f"op-{i}").client for i in range(4)]
    body = {"name": "raced", "owners": ["ops@example.com"]}

    responses = race([lambda c=c: c.post("/api/v1/templates/", body, format="json") for c in clients])

    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409], [r.json() for r in responses]
    assert AgentTemplate.objects.filter(tenant=tenant, name="raced").count() == 1
    assert verify_chain(tenant).ok


def test_a_deploy_racing_the_integrity_sweep_never_leaves_a_live_instance_of_a_tampered_version(tenant):
    version = VersionFactory(template=TemplateFactory(tenant=tenant), lifecycle_state="APPROVED", eval_status="PASS")
    env = EnvironmentFactory(tenant=tenant, tier=EnvironmentTier.PROD)
    provider = ProviderFactory(tenant=tenant)
    operator = Actor(ref="user:racer", roles=frozenset({"operator"}))

    def deploy():
        return services.instance_create(
            tenant=tenant, version=version, environment=env, provider=provider, actor=operator
        )

    before = race([deploy, deploy, lambda: services.version_verify_integrity(version=version)])
    assert all(isinstance(r, AgentInstance) for r in before[:2]), before
    tamper_genome(version)  # the in-memory ``version`` still holds the genome as it was

    after = race([deploy, deploy, deploy, lambda: services.version_verify_integrity(version=version)])

    for refused in after[:3]:
        assert isinstance(refused, Conflict) and refused.code == "version_tampered", after
    assert after[3].status == IntegrityStatus.TAMPERED
    assert AgentInstance.objects.filter(version=version).count() == 2
    live = AgentInstance.objects.filter(version=version).exclude(
        state__in=[InstanceState.QUARANTINED, InstanceState.RETIRED]
    )
    assert not live.exists()
    assert verify_chain(tenant).ok


def test_a_transition_locks_its_version_and_not_its_template(tenant):
    """While one transition holds its version, another version of the template can move and the template
    can be edited: only the version's row is locked."""
    import threading

    from django.db import DatabaseError, connections, transaction

    template = TemplateFactory(tenant=tenant)
    held, other = (VersionFactory(template=template, version_label=label) for label in ("1.0.0", "1.0.1"))
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                services.version_for_update(tenant.pk, held.pk)
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(30)
        with transaction.atomic():
            AgentTemplate.objects.select_for_update(nowait=True).get(pk=template.pk)
            AgentVersion.objects.select_for_update(nowait=True).get(pk=other.pk)
        with pytest.raises(DatabaseError), transaction.atomic():
            AgentVersion.objects.select_for_update(nowait=True).get(pk=held.pk)
    finally:
        release.set()
        thread.join(30)
