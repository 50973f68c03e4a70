"""``verify_audit --checkpoints DIR`` (issue 22): the database must still extend every signed checkpoint
published to a witness. A superuser who rewrites a record, re-hashes the chain after an edit, cuts its
tail or splices records is caught, and the output names the first checkpoint not extended, the range
between the last good one and it, and the first broken record when the chain itself does not hold."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.keys import configured_keyring
from audit.models import ChainHead, ChangeRecord
from tests.audit.test_chain import tamper_record
from tests.audit.test_checkpoints import append, rehash_forward
from tests.helpers import AUDIT_TABLE, db_id, drop_triggers, raw_sql

pytestmark = pytest.mark.django_db

HEAD = 35  # acme's records in ``published``; checkpoints published at #11 (the cast), #20 and #30


@pytest.fixture
def published(tenant, other_tenant, cast, outsider, signing_key, tmp_path, settings):
    """The witness directory after cron ran ``audit_checkpoint --push`` at #11, #20 and #30, and the keys
    document an auditor archived."""
    settings.ARM_AUDIT_WITNESS_DIR = str(tmp_path / "witness")
    for upto in (20, 30):
        call_command("audit_checkpoint", push=True, stdout=io.StringIO())
        append(tenant, upto - ChainHead.objects.get(tenant=tenant).last_seq)
    call_command("audit_checkpoint", push=True, stdout=io.StringIO())
    append(tenant, HEAD - 30)
    assert sorted(p.name for p in (tmp_path / "witness" / "acme").iterdir()) == ["11.json", "20.json", "30.json"]
    (tmp_path / "arm-audit-keys.json").write_text(json.dumps(configured_keyring().document()), encoding="utf-8")
    return tmp_path / "witness"


def check(witness, **options) -> tuple[int, str]:
    out = io.StringIO()
    keys = str(witness.parent / "arm-audit-keys.json")
    try:
        call_command("verify_audit", checkpoints=str(witness), public_keys=keys, stdout=out, **options)
        return 0, out.getvalue()
    except SystemExit as exc:
        return exc.code, out.getvalue()


def record(tenant, seq) -> ChangeRecord:
    return ChangeRecord.objects.get(tenant=tenant, seq=seq)


def test_a_clean_database_extends_every_published_checkpoint(published):
    code, out = check(published)
    assert code == 0, out
    assert (
        f"OK     acme: the database extends all 3 published checkpoint(s) (the last at #30); records #1..#{HEAD} "
        "recomputed from genesis"
    ) in out
    assert "OK     globex: the database extends all 1 published checkpoint(s)" in out


def test_a_rewritten_record_is_named_with_the_checkpoints_around_it(tenant, published):
    tamper_record(record(tenant, 15), payload={"i": "rewritten"})

    code, out = check(published)

    assert code == 3
    assert (
        "BROKEN acme: the database does not extend the checkpoint published at #20; the last checkpoint it extends: "
        "#11; the divergence lies in records #12..#20: first broken record #15 (content does not match its hash)"
    ) in out
    assert "OK     globex" in out


def test_a_chain_rehashed_after_an_edit_is_caught_by_the_next_checkpoint(tenant, published):
    rehash_forward(tenant, 15, actor="key:forger")  # every link holds: verify_audit --full passes

    code, out = check(published)

    assert code == 3
    new, old = record(tenant, 20).hash, json.loads((published / "acme" / "20.json").read_text())["hash"]
    assert (
        "BROKEN acme: the database does not extend the checkpoint published at #20; the last checkpoint it extends: "
        f"#11; the divergence lies in records #12..#20: record #20 has hash {new}, the checkpoint signed at #20 on "
    ) in out
    assert f"has {old}: records #12..#20 were rewritten (the chain holds in itself, so it was re-hashed" in out


def test_a_chain_rehashed_from_genesis_extends_none_of_the_checkpoints(tenant, published):
    rehash_forward(tenant, 2, actor="key:forger")
    code, out = check(published)
    assert code == 3
    assert "not extend the checkpoint published at #11; the last checkpoint it extends: none; the divergence" in out
    assert "lies in records #1..#11: record #11 has hash" in out


def test_a_cut_tail_with_the_head_rewound_is_named(tenant, published):
    drop_triggers(AUDIT_TABLE)
    raw_sql(f"DELETE FROM {AUDIT_TABLE} WHERE tenant_id = %s AND seq > 25", [db_id(tenant)])
    ChainHead.objects.filter(tenant=tenant).update(last_seq=25, last_hash=record(tenant, 25).hash)
    assert (ChangeRecord.objects.filter(tenant=tenant).count(), ChainHead.objects.get(tenant=tenant).last_seq) == (
        25,
        25,
    )

    code, out = check(published)

    assert code == 3
    assert (
        "BROKEN acme: the database does not extend the checkpoint published at #30; the last checkpoint it extends: "
        "#20; the divergence lies in records #21..#30: the chain ends at #25 (its head) but a checkpoint at #30 was "
        "signed on "
    ) in out
    assert "records #26..#30 were removed (the tail cut, the head rewound)" in out


def splice_out(tenant, seq: int) -> None:
    """Play a superuser who deletes record ``seq``, closes the gap (renumbers the ones after it) and
    re-chains everything after it, so the chain holds in itself."""
    drop_triggers(AUDIT_TABLE)
    raw_sql(f"DELETE FROM {AUDIT_TABLE} WHERE id = %s", [db_id(record(tenant, seq))])
    for later in ChangeRecord.objects.filter(tenant=tenant, seq__gt=seq).order_by("seq"):
        raw_sql(f"UPDATE {AUDIT_TABLE} SET seq = %s WHERE id = %s", [later.seq - 1, db_id(later)])
    prev = record(tenant, seq - 1).hash
    for rec in ChangeRecord.objects.filter(tenant=tenant, seq__gte=seq).order_by("seq"):
        rec.prev_hash = prev
        rec.hash = prev = rec.compute_hash()
        tamper_record(rec, prev_hash=rec.prev_hash, hash=rec.hash)
    last = ChangeRecord.objects.filter(tenant=tenant).order_by("-seq").first()
    ChainHead.objects.filter(tenant=tenant).update(last_seq=last.seq, last_hash=last.hash)


def test_a_record_spliced_out_is_caught_by_the_next_checkpoint(tenant, published):
    splice_out(tenant, 17)
    from audit.services import verify_chain

    assert verify_chain(tenant, full=True, save_checkpoint=False).ok  # the chain holds in itself

    code, out = check(published)

    assert code == 3
    assert (
        "BROKEN acme: the database does not extend the checkpoint published at #20; the last checkpoint it extends: "
        "#11; the divergence lies in records #12..#20: record #20 has hash"
    ) in out


def test_a_record_spliced_in_from_another_tenant_is_named(tenant, other_tenant, published):
    theirs = ChangeRecord.objects.filter(tenant=other_tenant).order_by("seq").first()
    tamper_record(record(tenant, 33), event_type=theirs.event_type, target_id=theirs.target_id, payload=theirs.payload)

    code, out = check(published)

    assert code == 3
    assert (
        "BROKEN acme: first broken record #33 (content does not match its hash); it extends 3 published "
        "checkpoint(s) before it"
    ) in out


def test_a_forged_file_in_the_witness_fails_and_two_disagreeing_checkpoints_are_a_fork(tenant, published):
    genuine = json.loads((published / "acme" / "20.json").read_text())
    (published / "acme" / "forged.json").write_text(json.dumps({**genuine, "hash": "e" * 64}))
    code, out = check(published)
    assert code == 3
    assert f"BROKEN {published}/acme/forged.json: not a genuine checkpoint (the signature does not verify" in out

    fields = {k: genuine[k] for k in ("tenant", "tenant_slug", "seq", "root", "time")}
    fork = configured_keyring().sign(**fields, hash="e" * 64)  # ARM's own key over another history
    (published / "acme" / "forged.json").write_text(json.dumps(fork))
    code, out = check(published)
    assert code == 3
    assert "BROKEN acme: two signed checkpoints at #20 disagree (" in out
    assert "): the signing key signed two different histories" in out


def test_checkpoints_of_a_tenant_the_database_lost_are_named(tenant, published):
    fields = {k: json.loads((published / "acme" / "30.json").read_text())[k] for k in ("seq", "hash", "root", "time")}
    stranger = configured_keyring().sign(**fields, tenant="00000000-0000-4000-8000-000000000000", tenant_slug="gone")
    (published / "gone").mkdir()
    (published / "gone" / "30.json").write_text(json.dumps(stranger))

    code, out = check(published)

    assert code == 3
    assert "BROKEN gone: 1 checkpoint(s) were published for tenant 00000000-0000-4000-8000-000000000000" in out


def test_keys_configured_on_this_box_are_pinned_by_default_and_nothing_pinned_is_a_usage_error(published, settings):
    out = io.StringIO()
    call_command("verify_audit", checkpoints=str(published), tenant="acme", stdout=out)
    assert "OK     acme" in out.getvalue() and "globex" not in out.getvalue()

    settings.ARM_AUDIT_SIGNING_KEY_FILE = ""
    with pytest.raises(CommandError, match="No public keys to check the checkpoints' signatures") as exc:
        call_command("verify_audit", checkpoints=str(published))
    assert exc.value.returncode == 2


def test_a_directory_without_checkpoints_is_a_usage_error(tmp_path, signing_key):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CommandError, match="holds no checkpoint") as exc:
        call_command("verify_audit", checkpoints=str(tmp_path / "empty"))
    assert exc.value.returncode == 2
    with pytest.raises(CommandError, match="is not a directory"):
        call_command("verify_audit", checkpoints=str(tmp_path / "missing"))
