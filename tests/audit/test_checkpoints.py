"""Incremental chain verification: a successful verification leaves a checkpoint at the head and the
next one recomputes only from it; ``full`` recomputes from genesis and confirms every checkpoint.
Tampering after the newest checkpoint, a forward re-hash before it, a forged checkpoint and a cut tail
are each named."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.utils import DatabaseError
from django.test.utils import CaptureQueriesContext

from audit.choices import EventType
from audit.models import ChainCheckpoint, ChainHead, ChangeRecord
from audit.services import record_change, verify_chain
from tenancy.context import Actor
from tenancy.models import Tenant
from tests.audit.test_chain import tamper_record, verify
from tests.helpers import AUDIT_TABLE, assert_error, db_id, drop_triggers, raw_sql, record_count

pytestmark = pytest.mark.django_db

CHECKPOINT_TABLE = "audit_chaincheckpoint"


def append(tenant, n=1):
    for i in range(n):
        record_change(
            tenant=tenant, event_type=EventType.TEMPLATE_CHANGED, target=tenant, payload={"i": i}, actor=Actor.system()
        )


def record(tenant, seq):
    return ChangeRecord.objects.get(tenant=tenant, seq=seq)


def checkpoints(tenant):
    return list(ChainCheckpoint.objects.filter(tenant=tenant).order_by("seq").values_list("seq", "hash"))


@pytest.fixture
def chain14(tenant, cast):
    # The cast's creation is recorded first (the tenant, 5 memberships, 5 API keys); appends make it 14.
    append(tenant, 14 - ChainHead.objects.get(tenant=tenant).last_seq)
    return tenant


def test_a_successful_verification_leaves_a_checkpoint_at_the_head_and_no_change_record(chain14, operator):
    before = record_count()
    assert verify(operator)["ok"] is True
    assert checkpoints(chain14) == [(14, record(chain14, 14).hash)]
    assert record_count() == before  # checkpoints are not domain changes


def test_next_verification_recomputes_only_from_the_checkpoint(chain14, operator):
    verify(operator)
    append(chain14, 3)

    assert verify(operator) == {
        "ok": True,
        "checked": 4,
        "first_broken_seq": None,
        "from_seq": 14,
        "to_seq": 17,
        "full": False,
        "reason": "",
    }
    assert [seq for seq, _ in checkpoints(chain14)] == [14, 17]
    # nothing new: only the checkpoint's own record is recomputed
    assert verify(operator)["checked"] == 1
    assert [seq for seq, _ in checkpoints(chain14)] == [14, 17]


def test_incremental_cost_does_not_grow_with_the_chain(tenant):
    append(tenant, 5)
    verify_chain(tenant)
    append(tenant, 2)
    with CaptureQueriesContext(connection) as small:
        assert verify_chain(tenant).checked == 3
    append(tenant, 300)
    verify_chain(tenant)
    append(tenant, 2)
    with CaptureQueriesContext(connection) as large:
        result = verify_chain(tenant)
    # 1 (the tenant's creation) + 5 + 2 + 300 + 2 records
    assert (result.ok, result.checked, result.from_seq, result.to_seq) == (True, 3, 308, 310)
    assert len(large.captured_queries) == len(small.captured_queries)


def test_failed_verification_leaves_no_checkpoint(chain14, operator):
    tamper_record(record(chain14, 9), actor="key:forger")
    assert verify(operator)["first_broken_seq"] == 9
    assert checkpoints(chain14) == []


def test_incremental_verification_detects_a_record_changed_after_the_checkpoint(chain14, operator, tenant, capsys):
    verify(operator)
    append(tenant, 5)  # 15..19
    tamper_record(record(tenant, 17), payload={"i": "rewritten"})

    assert verify(operator) == {
        "ok": False,
        "checked": 3,  # 14, 15, 16
        "first_broken_seq": 17,
        "from_seq": 14,
        "to_seq": 19,
        "full": False,
        "reason": "content does not match its hash",
    }
    with pytest.raises(SystemExit) as exc:
        call_command("verify_audit", tenant=tenant.slug)
    assert exc.value.code == 3
    assert "BROKEN acme: first broken record #17 (content does not match its hash)" in capsys.readouterr().out


def test_incremental_verification_detects_a_deleted_record_after_the_checkpoint(chain14, operator, tenant):
    verify(operator)
    append(tenant, 5)
    drop_triggers(AUDIT_TABLE)
    raw_sql(f"DELETE FROM {AUDIT_TABLE} WHERE id = %s", [db_id(record(tenant, 16))])

    result = verify(operator)

    assert (result["ok"], result["first_broken_seq"], result["reason"]) == (False, 16, "record #16 is missing")


def test_a_record_changed_before_the_newest_checkpoint_is_found_by_the_full_sweep(
    chain14, operator, compliance, tenant, capsys
):
    """The checkpoint vouches for what came before it: a change behind it that leaves the checkpoint's own
    record alone is outside an incremental verification — that is what ``full`` is for."""
    verify(operator)
    append(tenant, 2)
    tamper_record(record(tenant, 5), payload={"i": "rewritten"})

    assert verify(operator)["ok"] is True  # from the checkpoint at #14: by design
    assert verify(compliance, full="true") == {
        "ok": False,
        "checked": 4,
        "first_broken_seq": 5,
        "from_seq": 1,
        "to_seq": 16,
        "full": True,
        "reason": "content does not match its hash",
    }
    with pytest.raises(SystemExit) as exc:
        call_command("verify_audit", tenant=tenant.slug, full=True)
    assert exc.value.code == 3
    assert "BROKEN acme: first broken record #5 (content does not match its hash)" in capsys.readouterr().out


def rehash_forward(tenant, from_seq, **change):
    """Play an attacker who rewrites a record and re-chains every record after it up to the head."""
    drop_triggers(AUDIT_TABLE)
    prev_hash = None
    for rec in ChangeRecord.objects.filter(tenant=tenant, seq__gte=from_seq).order_by("seq"):
        if rec.seq == from_seq:
            for name, value in change.items():
                setattr(rec, name, value)
        else:
            rec.prev_hash = prev_hash
        rec.hash = rec.compute_hash()
        tamper_record(rec, prev_hash=rec.prev_hash, hash=rec.hash, **change if rec.seq == from_seq else {})
        prev_hash = rec.hash
    ChainHead.objects.filter(tenant=tenant).update(last_hash=prev_hash)


def test_a_rehashed_chain_behind_the_checkpoint_is_caught_by_the_checkpoint(chain14, operator, compliance, tenant):
    verify(operator)
    rehash_forward(tenant, 5, actor="key:forger")
    assert verify_chain(tenant, full=True, save_checkpoint=False).checked == 13  # every link holds again

    incremental = verify(operator)
    full = verify(compliance, full="true")

    for result in (incremental, full):
        assert (result["ok"], result["first_broken_seq"]) == (False, 14)
        assert "does not carry the hash of the checkpoint" in result["reason"]
    assert (incremental["full"], full["full"]) == (False, True)


def test_a_forged_checkpoint_is_named_and_the_full_sweep_confirms_every_checkpoint(chain14, operator, tenant, capsys):
    verify(operator)
    append(tenant, 6)
    verify(operator)  # checkpoints at 14 and 20
    drop_triggers(CHECKPOINT_TABLE)
    raw_sql(f"UPDATE {CHECKPOINT_TABLE} SET hash = %s WHERE seq = 14 AND tenant_id = %s", ["e" * 64, db_id(tenant)])

    assert verify(operator)["ok"] is True  # starts from the newest checkpoint, #20
    with pytest.raises(SystemExit):
        call_command("verify_audit", tenant=tenant.slug, full=True)
    out = capsys.readouterr().out
    assert "BROKEN acme: first broken record #14 (record #14 does not carry the hash of the checkpoint" in out


def test_full_sweep_reports_confirmed_checkpoints(chain14, operator, tenant, capsys):
    verify(operator)
    append(tenant, 2)
    verify(operator)
    call_command("verify_audit", tenant=tenant.slug, full=True)
    out = capsys.readouterr().out
    assert "OK     acme: 16 record(s) verified (#1..#16 from genesis; 2 checkpoint(s) confirmed)" in out
    append(tenant, 1)
    call_command("verify_audit", tenant=tenant.slug)
    out = capsys.readouterr().out
    assert "OK     acme: 17 record(s) verified: #16..#17 recomputed now (2), the ones before by the checkpoint" in out


def test_a_deleted_checkpoint_record_is_named(chain14, operator, tenant):
    verify(operator)
    drop_triggers(AUDIT_TABLE)
    raw_sql(f"DELETE FROM {AUDIT_TABLE} WHERE id = %s", [db_id(record(tenant, 14))])

    result = verify(operator)

    assert (result["ok"], result["first_broken_seq"], result["from_seq"]) == (False, 14, 14)
    assert result["reason"].startswith("record #14 is missing")


def test_truncated_tail_with_the_head_left_alone_is_named(chain14, operator, tenant):
    verify(operator)
    append(tenant, 4)  # 15..18
    drop_triggers(AUDIT_TABLE)
    raw_sql(f"DELETE FROM {AUDIT_TABLE} WHERE tenant_id = %s AND seq > 16", [db_id(tenant)])

    assert verify(operator) == {
        "ok": False,
        "checked": 3,
        "first_broken_seq": 17,
        "from_seq": 14,
        "to_seq": 18,
        "full": False,
        "reason": "record #17 is missing (the chain head is #18)",
    }


def test_truncated_tail_with_the_head_rewound_is_caught_by_a_checkpoint_beyond_it(chain14, operator, tenant):
    verify(operator)
    append(tenant, 4)
    verify(operator)  # checkpoint at 18
    drop_triggers(AUDIT_TABLE)
    raw_sql(f"DELETE FROM {AUDIT_TABLE} WHERE tenant_id = %s AND seq > 15", [db_id(tenant)])
    ChainHead.objects.filter(tenant=tenant).update(last_seq=15, last_hash=record(tenant, 15).hash)

    for result in (verify(operator), verify_chain(tenant, full=True)):
        result = result if isinstance(result, dict) else result.as_dict()
        assert (result["ok"], result["first_broken_seq"], result["to_seq"]) == (False, 16, 15)
        assert "record #18 was verified" in result["reason"]


def test_a_checkpoint_beyond_the_head_is_normal_while_writers_append(chain14, tenant):
    """Another verification may have read a newer head: its checkpoint's record exists and matches."""
    append(tenant, 2)
    ChainCheckpoint.objects.create(
        tenant=tenant, seq=16, hash=record(tenant, 16).hash, verified_at=record(tenant, 16).created_at
    )
    ChainHead.objects.filter(tenant=tenant).update(last_seq=14, last_hash=record(tenant, 14).hash)  # an older read

    result = verify_chain(tenant, save_checkpoint=False)

    assert (result.ok, result.to_seq) == (True, 14)


def test_checkpoints_are_append_only_in_the_database(chain14, operator, tenant):
    verify(operator)
    with pytest.raises(DatabaseError, match="append-only"):
        raw_sql(f"UPDATE {CHECKPOINT_TABLE} SET hash = %s", ["e" * 64])
    with pytest.raises(DatabaseError, match="cannot be deleted"):
        raw_sql(f"DELETE FROM {CHECKPOINT_TABLE}")
    assert checkpoints(tenant) == [(14, record(tenant, 14).hash)]


def test_full_verification_is_for_compliance_and_admin(chain14, viewer, operator, compliance, admin_member):
    for member in (viewer, operator):
        assert_error(member.client.get("/api/v1/audit/verify/", {"full": "true"}), 403, "role_required")
    assert verify(compliance, full="true")["full"] is True
    assert verify(admin_member, full="1")["full"] is True
    assert verify(viewer, full="false")["full"] is False  # a checkpoint exists now
    assert_error(viewer.client.get("/api/v1/audit/verify/", {"full": "maybe"}), 400, "validation_error")


def test_openapi_schema_documents_the_verification_fields(viewer):
    schema = viewer.client.get("/api/schema/?format=json").json()
    fields = schema["components"]["schemas"]["ChainVerification"]["properties"]
    assert set(fields) == {"ok", "checked", "first_broken_seq", "from_seq", "to_seq", "full", "reason"}
    params = schema["paths"]["/api/v1/audit/verify/"]["get"]["parameters"]
    assert "full" in {p["name"] for p in params}


def test_a_head_whose_hash_is_not_its_records_is_named(chain14, tenant):
    ChainHead.objects.filter(tenant=tenant).update(last_hash="f" * 64)
    result = verify_chain(tenant)
    assert (result.ok, result.checked, result.first_broken_seq) == (False, 13, 14)
    assert result.reason == "the chain head's hash is not the hash of record #14"


def test_an_empty_chain_with_a_forged_head_hash_is_named():
    # A tenant without records (inserted in bulk: every saved tenant has its creation recorded).
    tenant = Tenant(slug="empty", name="Empty")
    Tenant._base_manager.bulk_create([tenant])  # below the recorded manager: no record, on purpose
    ChainHead.objects.create(tenant=tenant, last_seq=0, last_hash="f" * 64)
    result = verify_chain(tenant)
    assert (result.ok, result.checked, result.first_broken_seq) == (False, 0, 1)
