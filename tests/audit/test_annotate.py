"""One record per write, owned by the model (``audit.recording``): a service annotates the record of its
save with its event, reason and context, never replaces it; before-values are the row as loaded,
refreshed or last saved."""

import pytest
from django.db import transaction

from arm.recording import UnconsumedAnnotation, annotate
from audit.choices import EventType, UnknownEvent
from audit.models import ChangeRecord
from audit.services import verify_chain
from registry.models import Environment
from tenancy.context import Actor, actor_context
from tests.factories import EnvironmentFactory, TemplateFactory

pytestmark = pytest.mark.django_db


def _records(obj):
    return list(ChangeRecord.objects.filter(target_id=str(obj.pk)).order_by("seq"))


def test_an_annotated_save_writes_one_record_with_the_diff_and_the_annotation(tenant):
    env = EnvironmentFactory(tenant=tenant, description="before")
    count = len(_records(env))
    env.description = "after"
    with annotate(env, reason="docs", actor=Actor(ref="user:alice"), ticket="OPS-7"):
        env.save()
    records = _records(env)
    assert len(records) == count + 1
    record = records[-1]
    assert (record.event_type, record.actor) == (EventType.ENVIRONMENT_CHANGED, "user:alice")
    assert record.payload == {
        "action": "changed",
        "model": "registry.Environment",
        "changes": {"description": {"before": "before", "after": "after"}},
        "reason": "docs",
        "ticket": "OPS-7",
    }


def test_an_annotated_event_names_the_record_and_is_recorded_even_without_a_change(tenant):
    from tests.factories import VersionFactory

    version = VersionFactory(template=TemplateFactory(tenant=tenant))
    with annotate(version, EventType.INTEGRITY_VERIFIED, stored_hash=version.genome_hash):
        version.save(update_fields=["integrity_checked_at"])
    record = _records(version)[-1]
    assert record.event_type == EventType.INTEGRITY_VERIFIED
    assert record.payload == {
        "action": "changed",
        "model": "registry.AgentVersion",
        "changes": {},
        "event": "INTEGRITY_VERIFIED",
        "stored_hash": version.genome_hash,
    }


def test_a_second_save_inside_the_block_writes_its_own_record(tenant):
    env = EnvironmentFactory(tenant=tenant, description="a")
    count = len(_records(env))
    with annotate(env, reason="first"):
        env.description = "b"
        env.save()
        env.description = "c"
        env.save()  # a real change: never swallowed by the annotation of the first
    first, second = _records(env)[count:]
    assert first.payload["changes"]["description"] == {"before": "a", "after": "b"}
    assert first.payload["reason"] == "first"
    assert second.payload["changes"]["description"] == {"before": "b", "after": "c"}
    assert "reason" not in second.payload


def test_the_annotation_is_the_objects_not_the_rows(tenant):
    env = EnvironmentFactory(tenant=tenant)
    other_copy = Environment.objects.get(pk=env.pk)
    other_copy.description = "x"
    with pytest.raises(UnconsumedAnnotation), annotate(env, reason="meant for env"):
        other_copy.save()
    assert "reason" not in _records(env)[-1].payload


def test_an_event_the_model_does_not_declare_is_refused(tenant):
    env = EnvironmentFactory(tenant=tenant)
    with pytest.raises(UnknownEvent), annotate(env, EventType.VERSION_TRANSITIONED):
        pass
    with pytest.raises(UnknownEvent), annotate(env, "ENVIRONMENT_UPDATED"):  # an old name
        pass


def test_context_cannot_replace_the_records_own_keys(tenant):
    env = EnvironmentFactory(tenant=tenant)
    with pytest.raises(ValueError, match="changes"), annotate(env, changes={}):
        pass


def test_an_annotation_nothing_wrote_is_a_bug_unless_withdrawn(tenant):
    env = EnvironmentFactory(tenant=tenant)
    with pytest.raises(UnconsumedAnnotation), annotate(env, reason="never saved"):
        pass
    with annotate(env, reason="a conditional write that matched nothing") as note:
        note.withdraw()


def test_generic_records_name_the_actor_of_the_context(tenant):
    env = EnvironmentFactory(tenant=tenant)
    env.name = "renamed"
    with actor_context(Actor(ref="user:shell-bob"), tenant):
        env.save()
    record = _records(env)[-1]
    assert (record.event_type, record.actor) == (EventType.ENVIRONMENT_CHANGED, "user:shell-bob")
    assert record.payload["changes"]["name"]["after"] == "renamed"


# ---------------------------------------------------------------- before-values


def test_a_refreshed_object_records_a_change_back_from_what_it_read(tenant):
    """Loaded as a, changed to b elsewhere, refreshed (b), saved as a: the row changed b -> a."""
    env = EnvironmentFactory(tenant=tenant, description="a")
    mine = Environment.objects.get(pk=env.pk)
    elsewhere = Environment.objects.get(pk=env.pk)
    elsewhere.description = "b"
    elsewhere.save()
    mine.refresh_from_db()
    assert mine.description == "b"
    count = len(_records(env))
    mine.description = "a"
    mine.save()
    records = _records(env)
    assert len(records) == count + 1
    assert records[-1].payload["changes"]["description"] == {"before": "b", "after": "a"}


def test_a_field_deferred_when_loaded_is_recorded_with_its_stored_value(tenant):
    env = EnvironmentFactory(tenant=tenant, description="stored")
    partial = Environment.objects.only("id", "tenant").get(pk=env.pk)
    partial.description = "new"
    partial.save(update_fields=["description"])
    assert _records(env)[-1].payload["changes"]["description"] == {"before": "stored", "after": "new"}


def test_a_json_value_changed_in_place_after_any_query_is_seen(tenant):
    template = TemplateFactory(tenant=tenant, tags=["a"])
    [loaded] = type(template).objects.filter(pk=template.pk)  # a list's rows are snapshotted the same way
    loaded.tags.append("b")
    loaded.save()
    assert _records(template)[-1].payload["changes"]["tags"] == {"before": ["a"], "after": ["a", "b"]}


def test_a_save_that_changes_nothing_writes_nothing_and_a_failed_one_leaves_no_record(tenant):
    env = EnvironmentFactory(tenant=tenant)
    count = len(_records(env))
    Environment.objects.get(pk=env.pk).save()
    assert len(_records(env)) == count
    with pytest.raises(RuntimeError), transaction.atomic():
        env.name = "renamed"
        env.save()
        raise RuntimeError("the caller fails after the save")
    assert len(_records(env)) == count
    assert verify_chain(tenant, full=True).ok
