"""POST /api/v1/instances/heartbeats/: many heartbeats in one UPDATE, each id answered on its own."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from registry.models import AgentInstance
from tests.factories import InstanceFactory, TemplateFactory, VersionFactory, make_api_key
from tests.helpers import assert_error, record_count

pytestmark = pytest.mark.django_db
URL = "/api/v1/instances/heartbeats/"


@pytest.fixture
def version(tenant):
    return VersionFactory(template=TemplateFactory(tenant=tenant, name="fleet-bot"))


def beats(client, ids, **extra):
    return client.post(URL, {"instances": [str(i) for i in ids], **extra}, format="json")


def results(response) -> dict:
    assert response.status_code == 200, response.json()
    return {row["id"]: row["result"] for row in response.json()["results"]}


def key_client(tenant, roles, instance=None) -> APIClient:
    _, secret = make_api_key(tenant, roles, instance=instance)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_beats_every_live_instance_and_answers_each_id(runtime_key, version):
    live = [InstanceFactory(version=version, state=s) for s in ("ACTIVE", "PAUSED", "PROVISIONING")]
    retired = InstanceFactory(version=version, state="RETIRED")
    missing = uuid.uuid4()
    before, start = record_count(), timezone.now()

    response = beats(runtime_key[1], [*[i.pk for i in live], retired.pk, missing], status={"host": "h1"})

    got = results(response)
    assert got == {
        **{str(i.pk): "ok" for i in live},
        str(retired.pk): "retired",
        str(missing): "not_found",
    }
    assert list(got) == [str(i.pk) for i in live] + [str(retired.pk), str(missing)]  # the order given
    body = response.json()
    assert (body["ok"], body["retired"], body["not_found"]) == (3, 1, 1)
    for instance in AgentInstance.objects.filter(pk__in=[i.pk for i in live]):
        assert instance.last_heartbeat_at >= start
        assert instance.heartbeat_status == {"host": "h1"}
    assert AgentInstance.objects.get(pk=retired.pk).last_heartbeat_at is None
    assert record_count() == before  # heartbeats write no change record


def test_another_tenants_ids_are_not_found_and_untouched(runtime_key, other_tenant):
    theirs = InstanceFactory(
        version=VersionFactory(template=TemplateFactory(tenant=other_tenant, name="theirs")), state="ACTIVE"
    )
    assert results(beats(runtime_key[1], [theirs.pk])) == {str(theirs.pk): "not_found"}
    assert AgentInstance.objects.get(pk=theirs.pk).last_heartbeat_at is None


def test_a_bound_runtime_key_beats_only_for_its_instance(tenant, version):
    mine, other = (InstanceFactory(version=version, state="ACTIVE") for _ in range(2))
    client = key_client(tenant, ["runtime"], instance=mine)

    assert results(beats(client, [mine.pk, other.pk])) == {str(mine.pk): "ok", str(other.pk): "not_found"}
    assert AgentInstance.objects.get(pk=other.pk).last_heartbeat_at is None
    assert AgentInstance.objects.get(pk=mine.pk).last_heartbeat_at is not None


@pytest.mark.parametrize("role", ["viewer", "approver", "compliance"])
def test_roles_without_heartbeat_are_refused(cast, version, role):
    instance = InstanceFactory(version=version, state="ACTIVE")
    assert_error(beats(cast[role].client, [instance.pk]), 403, "role_required")
    assert AgentInstance.objects.get(pk=instance.pk).last_heartbeat_at is None


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_operators_and_admins_may(cast, version, role):
    instance = InstanceFactory(version=version, state="ACTIVE")
    assert results(beats(cast[role].client, [instance.pk])) == {str(instance.pk): "ok"}


def test_more_than_1000_ids_is_413_before_anything_is_written(runtime_key, version):
    instance = InstanceFactory(version=version, state="ACTIVE")
    ids = [instance.pk, *(uuid.uuid4() for _ in range(1000))]
    assert_error(beats(runtime_key[1], ids), 413, "too_many_instances", contains=["1001"])
    assert AgentInstance.objects.get(pk=instance.pk).last_heartbeat_at is None
    assert results(beats(runtime_key[1], ids[:1000]))[str(instance.pk)] == "ok"


def test_none_or_garbage_is_400(runtime_key):
    assert_error(beats(runtime_key[1], []), 400, "validation_error")
    assert_error(runtime_key[1].post(URL, {"instances": ["nope"]}, format="json"), 400, "validation_error")
    assert_error(runtime_key[1].post(URL, {}, format="json"), 400, "validation_error")
    assert_error(beats(runtime_key[1], [uuid.uuid4()], status="fine"), 400, "validation_error")


def test_duplicates_are_answered_once(runtime_key, version):
    instance = InstanceFactory(version=version, state="ACTIVE")
    assert results(beats(runtime_key[1], [instance.pk, instance.pk])) == {str(instance.pk): "ok"}


def test_query_count_does_not_grow_with_the_batch(runtime_key, version):
    client = runtime_key[1]
    beats(client, [uuid.uuid4()])  # the key's last_used_at is refreshed on first use; keep it out
    few = [InstanceFactory(version=version, state="ACTIVE").pk for _ in range(2)]
    many = [InstanceFactory(version=version, state="ACTIVE").pk for _ in range(40)]
    counts = []
    for ids in (few, many):
        with CaptureQueriesContext(connection) as ctx:
            assert set(results(beats(client, ids)).values()) == {"ok"}
        counts.append(ctx.captured_queries)
    assert len(counts[0]) == len(counts[1]), [q["sql"][:80] for q in counts[1]]
    writes = [q["sql"] for q in counts[1] if q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT"))]
    assert len(writes) == 1 and "registry_agentinstance" in writes[0], writes


@pytest.mark.parametrize("bad", [False, 0, 1.5, None, ["x"], {"id": "x"}])
def test_ids_must_be_uuid_strings_not_numbers_or_booleans(operator, bad):
    # DRF's UUIDField reads false or 0 as 00000000-0000-0000-0000-000000000000 (found by the API fuzzing)
    response = operator.client.post("/api/v1/instances/heartbeats/", {"instances": [bad]}, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "validation_error"
