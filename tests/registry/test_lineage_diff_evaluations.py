"""Lineage, genome diff, evaluation results and heartbeats (SPEC §3)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from audit.choices import EventType
from registry.models import AgentInstance, AgentVersion, EvaluationResult
from tests.factories import InstanceFactory, TemplateFactory, VersionFactory, make_api_key, make_genome
from tests.helpers import assert_error, record_count, records

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(tenant):
    return TemplateFactory(tenant=tenant, name="support-bot")


@pytest.fixture
def chain(template):
    """root <- v1 <- v2 <- v3, plus a sibling of v2."""
    root = VersionFactory(template=template, version_label="1.0.0")
    v1 = VersionFactory(template=template, version_label="1.1.0", parent=root)
    v2 = VersionFactory(template=template, version_label="1.2.0", parent=v1)
    v3 = VersionFactory(template=template, version_label="1.3.0", parent=v2)
    sibling = VersionFactory(template=template, version_label="1.2.1", parent=v1)
    return root, v1, v2, v3, sibling


def lineage(member, version):
    response = member.client.get(f"/api/v1/versions/{version.pk}/lineage/")
    assert response.status_code == 200, response.json()
    return response.json()


def labels(rows):
    return [row["version_label"] for row in rows]


# ---------------------------------------------------------------- lineage


def test_lineage_walks_ancestors_to_the_root_nearest_first(viewer, chain):
    root, v1, v2, v3, _ = chain
    data = lineage(viewer, v3)
    assert data["version"] == str(v3.pk)
    assert labels(data["ancestors"]) == ["1.2.0", "1.1.0", "1.0.0"]
    assert data["ancestors"][-1]["parent"] is None
    assert data["children"] == []


def test_lineage_lists_direct_children(viewer, chain):
    root, v1, v2, v3, sibling = chain
    data = lineage(viewer, v1)
    assert labels(data["ancestors"]) == ["1.0.0"]
    assert sorted(labels(data["children"])) == ["1.2.0", "1.2.1"]


def test_root_has_no_ancestors(viewer, chain):
    root, *_ = chain
    data = lineage(viewer, root)
    assert data["ancestors"] == []
    assert labels(data["children"]) == ["1.1.0"]


def test_version_created_with_a_parent_via_the_api(operator, chain, template):
    root, v1, *_ = chain
    response = operator.client.post(
        "/api/v1/versions/",
        {"template": str(template.pk), "version_label": "2.0.0", "genome": make_genome(), "parent": str(v1.pk)},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["parent"] == str(v1.pk)
    (record,) = records(AgentVersion.objects.get(pk=response.json()["id"]), EventType.VERSION_CREATED)
    assert record.payload["after"]["parent"] == str(v1.pk)
    assert labels(lineage(operator, AgentVersion.objects.get(pk=response.json()["id"]))["ancestors"]) == [
        "1.1.0",
        "1.0.0",
    ]


def test_parent_from_another_template_is_400(operator, chain, tenant, template):
    other_template_version = VersionFactory(template=TemplateFactory(tenant=tenant))
    before = record_count()
    response = operator.client.post(
        "/api/v1/versions/",
        {
            "template": str(template.pk),
            "version_label": "2.0.0",
            "genome": make_genome(),
            "parent": str(other_template_version.pk),
        },
        format="json",
    )
    data = assert_error(response, 400, "validation_error")
    assert data["errors"]["parent"] == ["The parent must be a version of the same template."]
    assert not AgentVersion.objects.filter(version_label="2.0.0").exists()
    assert record_count() == before


def test_parent_must_be_a_uuid(operator, template):
    response = operator.client.post(
        "/api/v1/versions/",
        {"template": str(template.pk), "version_label": "2.0.0", "genome": make_genome(), "parent": "v1"},
        format="json",
    )
    data = assert_error(response, 400, "validation_error")
    assert "parent" in data["errors"]


# ---------------------------------------------------------------- diff

OLD = make_genome(
    tools=[
        {"name": "crm.lookup", "version": "1.2.0", "risk": "low"},
        {"name": "email.send", "risk": "high"},
        {"name": "fs.delete", "risk": "critical"},
    ],
    provenance={"commit": "aaa"},
)
NEW = {
    "model_config": {"provider": "anthropic", "name": "claude", "parameters": {"temperature": 0.5}},
    "prompt_bundle_hash": "sha256:" + "cd" * 32,
    "tool_manifest": [
        {"name": "crm.lookup", "version": "1.3.0", "risk": "medium"},
        {"name": "email.send", "risk": "high"},
        {"name": "web.search"},
    ],
    "provenance": {"commit": "bbb"},
}


@pytest.fixture
def pair(template):
    old = VersionFactory(template=template, version_label="1.0.0", genome=OLD)
    new = VersionFactory(template=template, version_label="2.0.0", genome=NEW, parent=old)
    return old, new


def diff(member, version, against=None):
    url = f"/api/v1/versions/{version.pk}/diff/" + (f"?against={against}" if against else "")
    return member.client.get(url)


def test_diff_reports_model_prompt_and_tool_changes(viewer, pair):
    old, new = pair
    response = diff(viewer, new, against=old.pk)
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "from": str(old.pk),
        "to": str(new.pk),
        "model_config": {
            "name": {"from": "gpt-4.1", "to": "claude"},
            "parameters": {"from": {"temperature": 0.2}, "to": {"temperature": 0.5}},
            "provider": {"from": "openai", "to": "anthropic"},
        },
        "prompt_bundle_hash": {"from": "sha256:" + "ab" * 32, "to": "sha256:" + "cd" * 32},
        "tools_added": [{"name": "web.search"}],
        "tools_removed": [{"name": "fs.delete", "risk": "critical"}],
        "tools_changed": [
            {
                "name": "crm.lookup",
                "changes": {"risk": {"from": "low", "to": "medium"}, "version": {"from": "1.2.0", "to": "1.3.0"}},
            }
        ],
        "provenance_changed": True,
    }


def test_diff_defaults_to_the_parent(viewer, pair):
    old, new = pair
    assert diff(viewer, new).json() == diff(viewer, new, against=old.pk).json()


def test_diff_the_other_way_swaps_added_and_removed(viewer, pair):
    old, new = pair
    data = diff(viewer, old, against=new.pk).json()
    assert [t["name"] for t in data["tools_added"]] == ["fs.delete"]
    assert [t["name"] for t in data["tools_removed"]] == ["web.search"]
    assert data["prompt_bundle_hash"] == {"from": "sha256:" + "cd" * 32, "to": "sha256:" + "ab" * 32}


def test_diff_of_identical_genomes_is_empty(viewer, template):
    a = VersionFactory(template=template, genome=make_genome())
    b = VersionFactory(template=template, genome=make_genome())
    data = diff(viewer, b, against=a.pk).json()
    assert data["model_config"] == {}
    assert data["prompt_bundle_hash"] is None
    assert data["tools_added"] == data["tools_removed"] == data["tools_changed"] == []
    assert data["provenance_changed"] is False


def test_diff_without_parent_or_against_is_404(viewer, template):
    orphan = VersionFactory(template=template)
    assert_error(diff(viewer, orphan), 404, "not_found", contains=["against"])


def test_diff_across_templates_is_400(viewer, pair, tenant):
    old, _ = pair
    stranger = VersionFactory(template=TemplateFactory(tenant=tenant))
    assert_error(diff(viewer, old, against=stranger.pk), 400, "validation_error", contains=["same template"])


def test_diff_against_a_non_uuid_is_400_and_unknown_is_404(viewer, pair):
    old, _ = pair
    assert_error(diff(viewer, old, against="nope"), 400, "validation_error")
    assert_error(diff(viewer, old, against="7d444840-9dc0-11d1-b245-5ffdce74fad2"), 404, "not_found")


def test_diff_and_lineage_do_not_write_records(viewer, pair):
    old, new = pair
    before = record_count()
    diff(viewer, new)
    lineage(viewer, new)
    assert record_count() == before


# ---------------------------------------------------------------- evaluations


def evaluate(member, version, status, suite="safety", **extra):
    return member.client.post(
        f"/api/v1/versions/{version.pk}/evaluations/", {"suite": suite, "status": status, **extra}, format="json"
    )


def eval_status(version):
    return AgentVersion.objects.get(pk=version.pk).eval_status


def test_evaluation_sets_eval_status_and_is_recorded(operator, template):
    version = VersionFactory(template=template, lifecycle_state="TESTING")
    response = evaluate(operator, version, "PASS", score=0.97, details={"cases": 120})

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["version"] == str(version.pk)
    assert (data["suite"], data["status"], data["score"], data["details"]) == ("safety", "PASS", 0.97, {"cases": 120})
    assert eval_status(version) == "PASS"
    # Two rows, two records: the result's creation, and the version's eval_status set by it.
    (created,) = records(EvaluationResult.objects.get(pk=data["id"]), EventType.EVALUATION_CREATED)
    assert (created.actor, created.payload["after"]["score"]) == (operator.actor.ref, 0.97)
    (record,) = records(version, EventType.EVALUATION_RECORDED)
    assert record.actor == operator.actor.ref
    assert record.payload == {
        "action": "changed",
        "model": "registry.AgentVersion",
        "changes": {"eval_status": {"before": "PENDING", "after": "PASS"}},
        "event": "EVALUATION_RECORDED",
        "evaluation": data["id"],
        "suite": "safety",
        "status": "PASS",
    }


def test_eval_status_follows_the_latest_result(operator, template):
    version = VersionFactory(template=template)
    for status, expected in [("PASS", "PASS"), ("FAIL", "FAIL"), ("PASS", "PASS"), ("FAIL", "FAIL")]:
        assert evaluate(operator, version, status, suite=f"suite-{status}").status_code == 201
        assert eval_status(version) == expected
    assert len(records(version, EventType.EVALUATION_RECORDED)) == 4


def test_latest_result_then_unlocks_promotion(operator, template):
    version = VersionFactory(template=template, lifecycle_state="TESTING", version_label="1.4.0")
    url = f"/api/v1/versions/{version.pk}/transition/"
    assert operator.client.post(url, {"to": "CANDIDATE"}).status_code == 409
    evaluate(operator, version, "PASS")
    assert operator.client.post(url, {"to": "CANDIDATE"}).status_code == 200


def test_evaluations_are_listed_newest_first_and_filterable(viewer, operator, template):
    version = VersionFactory(template=template)
    for suite, status in [("a", "PASS"), ("b", "FAIL"), ("c", "PASS")]:
        evaluate(operator, version, status, suite=suite)

    url = f"/api/v1/versions/{version.pk}/evaluations/"
    data = viewer.client.get(url).json()
    assert [row["suite"] for row in data["results"]] == ["c", "b", "a"]
    assert [row["suite"] for row in viewer.client.get(url, {"status": "FAIL"}).json()["results"]] == ["b"]
    assert [row["suite"] for row in viewer.client.get(url, {"suite": "a"}).json()["results"]] == ["a"]


def test_evaluation_needs_a_known_status(operator, template):
    version = VersionFactory(template=template)
    for status in ["PENDING", "pass", "", None]:
        assert_error(evaluate(operator, version, status), 400, "validation_error", contains=["status"])
    assert not EvaluationResult.objects.exists()
    assert eval_status(version) == "PENDING"


def test_retired_version_takes_no_evaluations(operator, template):
    version = VersionFactory(template=template, lifecycle_state="RETIRED", version_label="0.9.0")
    assert_error(evaluate(operator, version, "PASS"), 409, "conflict", contains=["RETIRED"])
    assert records(version, EventType.EVALUATION_RECORDED) == []


# ---------------------------------------------------------------- heartbeat and health


@pytest.fixture
def instance(template):
    return InstanceFactory(version=VersionFactory(template=template), state="ACTIVE")


def beat(client, instance, status=None):
    payload = {} if status is None else {"status": status}
    return client.post(f"/api/v1/instances/{instance.pk}/heartbeat/", payload, format="json")


def test_heartbeat_sets_last_heartbeat_at_and_writes_no_record(runtime_key, instance):
    before = record_count()
    start = timezone.now()

    response = beat(runtime_key[1], instance, status={"queue": 3})

    assert response.status_code == 200, response.json()
    assert response.json()["health"] == "healthy"
    fresh = AgentInstance.objects.get(pk=instance.pk)
    assert fresh.last_heartbeat_at >= start
    assert fresh.heartbeat_status == {"queue": 3}
    assert record_count() == before


def test_heartbeat_is_a_single_update_of_the_instance(runtime_key, instance):
    beat(runtime_key[1], instance)  # the key's last_used_at is refreshed on first use; keep it out
    with CaptureQueriesContext(connection) as ctx:
        assert beat(runtime_key[1], instance).status_code == 200
    writes = [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT"))]
    assert len(writes) == 1, writes
    assert "registry_agentinstance" in writes[0]


def test_instance_health_is_never_healthy_or_stale(viewer, instance, tenant):
    url = f"/api/v1/instances/{instance.pk}/"
    assert viewer.client.get(url).json()["health"] == "never"

    AgentInstance.objects.filter(pk=instance.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=30))
    assert viewer.client.get(url).json()["health"] == "healthy"

    AgentInstance.objects.filter(pk=instance.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=121))
    assert viewer.client.get(url).json()["health"] == "stale"
    assert viewer.client.get("/api/v1/instances/").json()["results"][0]["health"] == "stale"


def test_the_stale_window_is_the_tenants(viewer, instance, tenant):
    tenant.heartbeat_window_seconds = 20
    tenant.save()
    AgentInstance.objects.filter(pk=instance.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=30))
    assert viewer.client.get(f"/api/v1/instances/{instance.pk}/").json()["health"] == "stale"


def test_health_filter(viewer, template):
    version = VersionFactory(template=template)
    never = InstanceFactory(version=version)
    healthy = InstanceFactory(version=version, last_heartbeat_at=timezone.now())
    stale = InstanceFactory(version=version, last_heartbeat_at=timezone.now() - timedelta(hours=1))
    for value, expected in [("never", never), ("healthy", healthy), ("stale", stale)]:
        rows = viewer.client.get("/api/v1/instances/", {"health": value}).json()["results"]
        assert [row["id"] for row in rows] == [str(expected.pk)], value


def test_a_stale_instance_becomes_healthy_on_a_heartbeat(runtime_key, viewer, instance):
    AgentInstance.objects.filter(pk=instance.pk).update(last_heartbeat_at=timezone.now() - timedelta(hours=2))
    beat(runtime_key[1], instance)
    assert viewer.client.get(f"/api/v1/instances/{instance.pk}/").json()["health"] == "healthy"


def bound_key_client(tenant, instance):
    _, secret = make_api_key(tenant, ["runtime"], instance=instance)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_runtime_key_bound_to_another_instance_gets_404(tenant, instance, template):
    other = InstanceFactory(version=instance.version, state="ACTIVE")
    client = bound_key_client(tenant, other)

    assert_error(beat(client, instance), 404, "not_found")
    assert AgentInstance.objects.get(pk=instance.pk).last_heartbeat_at is None
    assert beat(client, other).status_code == 200


def test_retired_instance_takes_no_heartbeat(runtime_key, template):
    retired = InstanceFactory(version=VersionFactory(template=template), state="RETIRED")
    assert_error(beat(runtime_key[1], retired), 409, "instance_retired")
    assert AgentInstance.objects.get(pk=retired.pk).last_heartbeat_at is None


def test_heartbeat_status_must_be_an_object(runtime_key, instance):
    assert_error(beat(runtime_key[1], instance, status="fine"), 400, "validation_error")
    assert beat(runtime_key[1], instance, status=None).status_code == 200
