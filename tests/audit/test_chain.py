"""The per-tenant hash chain (SPEC §6): independent sequences per tenant, a chain that verifies, a
modified or deleted record named by ``/api/v1/audit/verify/`` and ``verify_audit``; the audit list's
filters and newest-first cursor pagination."""

import json

import pytest
from django.core.management import call_command
from django.db import connection

from audit.choices import EventType
from audit.models import GENESIS_HASH, ChainHead, ChangeRecord
from audit.services import record_change, verify_chain
from registry import services
from tenancy.context import Actor
from tenancy.models import Tenant
from tests.factories import TemplateFactory, VersionFactory
from tests.helpers import AUDIT_TABLE, assert_error, db_id, drop_triggers, raw_sql

pytestmark = pytest.mark.django_db


def make_changes(tenant, actor, templates=4):
    """A realistic mix of changes: templates created and updated, a version created and transitioned."""
    created = []
    for i in range(templates):
        template = services.template_create(tenant=tenant, actor=actor, name=f"bot-{i}", owners=["ops@example.com"])
        services.template_update(template=template, actor=actor, description=f"v{i}")
        created.append(template)
    version = VersionFactory(template=created[0])
    services.version_transition(version=version, to="TESTING", actor=actor)
    services.evaluation_record(version=version, suite="safety", status="PASS", actor=actor)
    return created


# Records each tenant's chain holds after ``two_chains``: the cast's own creation (every save is recorded:
# the tenant, then a membership and an API key per member: 5 + 5 for acme, 1 + 1 for globex's outsider),
# then make_changes (a create and an update per template, the factory version's creation, a transition,
# and an evaluation: the result's creation and the version's EVALUATION_RECORDED).
OURS = 1 + 5 + 5 + 6 * 2 + 4
THEIRS = 1 + 1 + 1 + 3 * 2 + 4


def chain(tenant):
    return list(ChangeRecord.objects.filter(tenant=tenant).order_by("seq"))


def verify(member, **params):
    response = member.client.get("/api/v1/audit/verify/", params)
    assert response.status_code == 200, response.json()
    return response.json()


def whole(to_seq, reason=""):
    """The fields a verification from genesis up to head ``to_seq`` adds to ok/checked/first_broken_seq."""
    return {"from_seq": 1, "to_seq": to_seq, "full": True, "reason": reason}


@pytest.fixture
def two_chains(tenant, other_tenant, operator, outsider):
    make_changes(tenant, operator.actor, templates=6)
    make_changes(other_tenant, outsider.actor, templates=3)
    return chain(tenant), chain(other_tenant)


def test_each_tenant_has_its_own_gapless_sequence(two_chains, tenant, other_tenant):
    ours, theirs = two_chains
    assert [r.seq for r in ours] == list(range(1, OURS + 1))
    assert [r.seq for r in theirs] == list(range(1, THEIRS + 1))
    assert {r.tenant_id for r in ours} == {tenant.pk}
    assert {r.tenant_id for r in theirs} == {other_tenant.pk}


def test_records_link_to_their_predecessor(two_chains):
    for records_ in two_chains:
        assert records_[0].prev_hash == GENESIS_HASH
        for previous, record in zip(records_, records_[1:], strict=False):
            assert record.prev_hash == previous.hash
        for record in records_:
            assert record.hash == record.compute_hash()
            assert len(record.hash) == 64


def test_chain_head_points_at_the_last_record(two_chains, tenant):
    ours, _ = two_chains
    head = ChainHead.objects.get(tenant=tenant)
    assert (head.last_seq, head.last_hash) == (ours[-1].seq, ours[-1].hash)


def test_chain_verifies_after_many_changes(two_chains, operator, outsider, capsys):
    assert verify(operator) == {"ok": True, "checked": OURS, "first_broken_seq": None, **whole(OURS)}
    assert verify(outsider) == {"ok": True, "checked": THEIRS, "first_broken_seq": None, **whole(THEIRS)}
    call_command("verify_audit")  # returns normally: exit status 0
    out = capsys.readouterr().out
    assert f"acme: {OURS} record(s) verified" in out and f"globex: {THEIRS} record(s) verified" in out


def test_empty_chain_verifies():
    # Every saved tenant has its creation recorded; a chain without records needs a bulk insert.
    empty = Tenant(slug="empty", name="Empty")
    Tenant._base_manager.bulk_create([empty])  # below the recorded manager: no record, on purpose
    result = verify_chain(empty)
    assert (result.ok, result.checked, result.first_broken_seq, result.to_seq) == (True, 0, None, 0)


def _json_param(value: dict) -> str:
    return json.dumps(value)


def tamper_record(record, **columns):
    drop_triggers(AUDIT_TABLE)
    sets = ", ".join(
        f"{c} = CAST(%s AS jsonb)" if c == "payload" and connection.vendor == "postgresql" else f"{c} = %s"
        for c in columns
    )
    values = [_json_param(v) if isinstance(v, dict) else v for v in columns.values()]
    assert raw_sql(f"UPDATE {AUDIT_TABLE} SET {sets} WHERE id = %s", [*values, db_id(record)]) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"payload": {"changes": {"name": {"before": "x", "after": "evil"}}}},
        {"actor": "key:someoneelse"},
        {"event_type": "TEMPLATE_DELETED"},
        {"target_id": "00000000-0000-0000-0000-000000000000"},
        {"hash": "0" * 64},
    ],
    ids=lambda c: next(iter(c)),
)
def test_modified_record_is_named_by_verify(two_chains, tenant, operator, outsider, change, capsys):
    ours, _ = two_chains
    victim = ours[6]  # seq 7
    tamper_record(victim, **change)

    assert verify(operator) == {
        "ok": False,
        "checked": 6,
        "first_broken_seq": 7,
        **whole(OURS, reason="content does not match its hash"),
    }
    assert verify(outsider)["ok"] is True  # the other tenant's chain is independent

    with pytest.raises(SystemExit) as exc:
        call_command("verify_audit", tenant=tenant.slug)
    assert exc.value.code == 3
    out = capsys.readouterr().out
    assert "BROKEN acme: first broken record #7" in out
    call_command("verify_audit", tenant="globex")  # still fine


def test_rehashing_a_modified_record_breaks_the_next_link(two_chains, operator):
    ours, _ = two_chains
    victim = ours[6]
    victim.actor = "key:forger"
    tamper_record(victim, actor="key:forger", hash=victim.compute_hash())

    result = verify(operator)

    assert result == {
        "ok": False,
        "checked": 7,
        "first_broken_seq": 8,
        **whole(OURS, reason="prev_hash does not match the previous record"),
    }


def test_deleted_record_is_detected(two_chains, tenant, operator):
    ours, _ = two_chains
    drop_triggers(AUDIT_TABLE)
    raw_sql(f"DELETE FROM {AUDIT_TABLE} WHERE id = %s", [db_id(ours[3])])

    assert verify(operator) == {
        "ok": False,
        "checked": 3,
        "first_broken_seq": 4,
        **whole(OURS, reason="record #4 is missing"),
    }
    with pytest.raises(SystemExit) as exc:
        call_command("verify_audit", tenant=tenant.slug)
    assert exc.value.code == 3


def test_deleted_last_record_is_detected(two_chains, operator):
    ours, _ = two_chains
    drop_triggers(AUDIT_TABLE)
    raw_sql(f"DELETE FROM {AUDIT_TABLE} WHERE id = %s", [db_id(ours[-1])])

    assert verify(operator) == {
        "ok": False,
        "checked": OURS - 1,
        "first_broken_seq": OURS,
        **whole(OURS, reason=f"record #{OURS} is missing (the chain head is #{OURS})"),
    }


def test_verify_chain_service_explains_the_break(two_chains, tenant):
    ours, _ = two_chains
    tamper_record(ours[1], payload={})
    result = verify_chain(tenant)
    assert (result.ok, result.first_broken_seq) == (False, 2)
    assert "hash" in result.reason


def test_appends_after_a_verified_chain_keep_verifying(two_chains, tenant, operator):
    record_change(tenant=tenant, event_type=EventType.TEMPLATE_CHANGED, target=tenant, actor=Actor.system())
    assert verify(operator) == {"ok": True, "checked": OURS + 1, "first_broken_seq": None, **whole(OURS + 1)}


# ---------------------------------------------------------------- the audit list


def listed(member, **params):
    response = member.client.get("/api/v1/audit/", params)
    assert response.status_code == 200, response.json()
    return response.json()


def seqs(data):
    return [row["seq"] for row in data["results"]]


def test_list_is_newest_first_with_the_spec_fields(two_chains, viewer):
    data = listed(viewer)
    assert seqs(data) == list(range(OURS, 0, -1))
    assert set(data["results"][0]) == {
        "id",
        "seq",
        "event_type",
        "target_type",
        "target_id",
        "actor",
        "created_at",
        "payload",
        "prev_hash",
        "hash",
    }


def test_cursor_pagination_walks_every_record_once_newest_first(two_chains, viewer):
    data = listed(viewer, page_size=4)
    assert "count" not in data or data["count"] is None or isinstance(data["count"], int)
    assert data["previous"] is None
    seen = seqs(data)
    pages = 1
    while data["next"]:
        assert "cursor=" in data["next"]
        response = viewer.client.get(data["next"])
        assert response.status_code == 200
        data = response.json()
        seen += seqs(data)
        pages += 1
    assert seen == list(range(OURS, 0, -1))
    assert pages == -(-OURS // 4)


def test_bogus_cursor_is_404_not_500(two_chains, viewer):
    response = viewer.client.get("/api/v1/audit/", {"cursor": "not-a-cursor"})
    assert_error(response, 404, "not_found")


def test_filter_by_event_type(two_chains, viewer):
    data = listed(viewer, event_type="TEMPLATE_CREATED")
    assert len(data["results"]) == 6
    assert {row["event_type"] for row in data["results"]} == {"TEMPLATE_CREATED"}
    both = viewer.client.get("/api/v1/audit/?event_type=TEMPLATE_CREATED&event_type=VERSION_TRANSITIONED").json()
    assert len(both["results"]) == 7


def test_filter_by_target(two_chains, viewer, tenant):
    template = ChangeRecord.objects.filter(tenant=tenant, event_type="TEMPLATE_CREATED").order_by("seq").first()
    data = listed(viewer, target_type="AgentTemplate", target_id=template.target_id)
    assert [row["event_type"] for row in data["results"]] == ["TEMPLATE_CHANGED", "TEMPLATE_CREATED"]
    assert {row["target_id"] for row in data["results"]} == {template.target_id}
    version_events = [row["event_type"] for row in listed(viewer, target_type="AgentVersion")["results"]]
    assert version_events == ["EVALUATION_RECORDED", "VERSION_TRANSITIONED", "VERSION_CREATED"]


def test_filter_by_actor(tenant, viewer, operator, admin_member):
    make_changes(tenant, operator.actor, templates=2)
    TemplateFactory(tenant=tenant, name="other")
    services.template_update(
        template=TemplateFactory(tenant=tenant, name="by-admin"), actor=admin_member.actor, tags=["x"]
    )
    data = listed(viewer, actor=admin_member.actor.ref)
    assert [row["event_type"] for row in data["results"]] == ["TEMPLATE_CHANGED"]
    assert {row["actor"] for row in listed(viewer, actor=operator.actor.ref)["results"]} == {operator.actor.ref}


def test_filter_by_time_range(two_chains, viewer):
    ours, _ = two_chains
    since, until = ours[4].created_at, ours[10].created_at
    expected = sorted((r.seq for r in ours if since <= r.created_at < until), reverse=True)
    assert 5 in expected and 11 not in expected

    data = listed(viewer, since=since.isoformat(), until=until.isoformat())

    assert seqs(data) == expected
    assert seqs(listed(viewer, since=since.isoformat())) == [r.seq for r in reversed(ours) if r.created_at >= since]


def test_list_and_detail_show_only_the_tenants_records(two_chains, viewer, outsider):
    ours, theirs = two_chains
    assert {row["id"] for row in listed(viewer)["results"]} == {str(r.pk) for r in ours}
    assert viewer.client.get(f"/api/v1/audit/{ours[0].pk}/").json()["seq"] == 1
    assert_error(viewer.client.get(f"/api/v1/audit/{theirs[0].pk}/"), 404, "not_found")
