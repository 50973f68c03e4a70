"""Event names are declared on the models and checked in Python (``audit.choices``); the names older
records carry stay readable: they verify as they were, and a filter by either twin finds both."""

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from audit.choices import ALIASES, EventNames, EventType, UnknownEvent, declared
from audit.models import ChangeRecord
from audit.services import record_change, verify_chain
from registry import services
from tests.factories import TemplateFactory

pytestmark = pytest.mark.django_db


def test_the_names_are_the_models_declarations():
    from registry.models import AgentVersion

    assert declared()["VERSION_TRANSITIONED"] == "registry.AgentVersion"
    assert {"VERSION_CREATED", "VERSION_CHANGED"} <= set(declared())
    assert "VERSION_DELETED" not in declared()  # versions are never deleted: no such record
    assert set(AgentVersion.audit.events) <= set(EventType.values)
    assert EventType.APPROVAL_USED == "APPROVAL_USED"
    with pytest.raises(AttributeError):
        EventType.VERSION_TELEPORTED  # noqa: B018


def test_a_record_under_a_name_nobody_declared_or_an_old_name_is_refused(tenant):
    count = ChangeRecord.objects.count()
    with pytest.raises(UnknownEvent, match="declares"):
        record_change(tenant=tenant, event_type="VERSION_TELEPORTED", target=tenant)
    with pytest.raises(UnknownEvent, match="TEMPLATE_CHANGED"):
        record_change(tenant=tenant, event_type="TEMPLATE_UPDATED", target=tenant)
    assert ChangeRecord.objects.count() == count


def test_no_migration_is_pending_for_event_names():
    call_command("makemigrations", "audit", "--check", "--dry-run", verbosity=0)


@pytest.fixture
def twins(tenant, operator, monkeypatch):
    """A template updated twice: once as services wrote it before (TEMPLATE_UPDATED, on an old record that
    stays), once now (TEMPLATE_CHANGED)."""
    template = TemplateFactory(tenant=tenant)
    with monkeypatch.context() as old_code:
        old_code.setattr(EventNames, "writable", lambda self, name: name)
        old = record_change(
            tenant=tenant, event_type="TEMPLATE_UPDATED", target=template, payload={"changes": {}}, actor=operator.actor
        )
    services.template_update(template=template, actor=operator.actor, description="now")
    new = ChangeRecord.objects.get(target_id=str(template.pk), event_type="TEMPLATE_CHANGED")
    return old, new


@pytest.mark.parametrize("name", ["TEMPLATE_CHANGED", "TEMPLATE_UPDATED"])
def test_a_filter_by_either_twin_finds_old_and_new_records(twins, tenant, viewer, name):
    old, new = twins
    api = viewer.client.get("/api/v1/audit/", {"event_type": name}).json()["results"]
    assert {row["id"] for row in api} == {str(old.pk), str(new.pk)}
    ui = Client()
    ui.force_login(viewer.user)
    html = ui.get(reverse("ui:audit"), {"event_type": name}).content.decode()
    rows = html.split('<tr class="align-top">')[1:]
    assert sorted(row.split("</td>", 1)[0].rsplit(">", 1)[1] for row in rows) == sorted([str(old.seq), str(new.seq)])
    assert verify_chain(tenant, full=True).ok  # the old record verifies as it was written


def test_every_alias_points_at_a_declared_name():
    assert set(ALIASES.values()) <= set(declared())
    assert not set(ALIASES) & set(declared())
    assert EventType.equivalents("TEMPLATE_UPDATED") == EventType.equivalents("TEMPLATE_CHANGED")
    assert EventType.equivalents("VERSION_TRANSITIONED") == ("VERSION_TRANSITIONED",)
