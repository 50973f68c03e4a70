"""Signed checkpoints (issue 22): ``audit_checkpoint`` signs each tenant's head with the key held outside
the database, skips a head that has not moved, and signs nothing over a chain that does not extend what
it signed before; the checkpoints are append-only, listed and taken through the API, and verifiable with
the keys published at the well-known URL, across key rotation."""

import io
import json
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection

from audit import merkle, signing
from audit.keys import configured_keyring
from audit.models import ChainHead, ChangeRecord, SignedCheckpoint
from audit.services import ChainNotExtended, checkpoint_take
from tenancy.models import Tenant
from tests.audit.test_chain import tamper_record
from tests.audit.test_checkpoints import append, rehash_forward
from tests.helpers import AUDIT_TABLE, assert_error, db_id, drop_triggers, raw_sql

pytestmark = pytest.mark.django_db

SIGNED_TABLE = "audit_signedcheckpoint"


def hashes(tenant, upto=None) -> list[bytes]:
    rows = ChangeRecord.objects.filter(tenant=tenant).order_by("seq")
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    return [bytes.fromhex(h) for h in rows.values_list("hash", flat=True)]


def run(*args, **options) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("audit_checkpoint", *args, stdout=out, **options)
        return 0, out.getvalue()
    except SystemExit as exc:
        return exc.code, out.getvalue()


def test_the_command_signs_every_tenants_head(tenant, other_tenant, cast, signing_key):
    code, out = run()

    assert code == 0, out
    published = signing.parse_keys_document(configured_keyring().document())
    for each in (tenant, other_tenant):
        head = ChainHead.objects.get(tenant=each)
        checkpoint = SignedCheckpoint.objects.get(tenant=each)
        assert (checkpoint.seq, checkpoint.hash) == (head.last_seq, head.last_hash)
        assert checkpoint.root == merkle.root(hashes(each)).hex()
        assert checkpoint.key_id == configured_keyring().active.key_id
        assert signing.verify_checkpoint(checkpoint.document(each.slug), published)
        assert f"SIGNED {each.slug}: #{head.last_seq} {head.last_hash} (root {checkpoint.root}" in out


def test_a_head_that_did_not_move_is_not_signed_again(tenant, cast, signing_key):
    first = checkpoint_take(tenant)
    code, out = run(tenant=tenant.slug)
    assert first.created and code == 0
    assert f"SAME   acme: the head #{first.checkpoint.seq} was signed on {first.checkpoint.time}" in out
    assert SignedCheckpoint.objects.filter(tenant=tenant).count() == 1

    append(tenant, 3)
    again = checkpoint_take(tenant)

    assert again.created and again.checkpoint.seq == first.checkpoint.seq + 3
    assert again.checkpoint.root == merkle.root(hashes(tenant)).hex()


def test_signing_without_a_key_is_a_configuration_error(tenant, cast, settings):
    settings.ARM_AUDIT_SIGNING_KEY_FILE = settings.ARM_AUDIT_SIGNING_KEY = ""
    with pytest.raises(CommandError, match="No audit signing key is configured") as exc:
        call_command("audit_checkpoint")
    assert exc.value.returncode == 2
    assert not SignedCheckpoint.objects.exists()


def test_the_key_may_come_from_the_environment_as_pem_text(tenant, cast, settings):
    pem = signing.generate_private_key_pem().decode()
    settings.ARM_AUDIT_SIGNING_KEY_FILE = ""
    settings.ARM_AUDIT_SIGNING_KEY = pem.replace("\n", "\\n")  # one line, as env files hold it
    checkpoint = checkpoint_take(tenant).checkpoint
    assert checkpoint.key_id == signing.key_id(signing.load_private_key(pem).public_key())


def test_two_signing_keys_are_refused(tenant, signing_key, settings):
    settings.ARM_AUDIT_SIGNING_KEY = signing.generate_private_key_pem().decode()
    with pytest.raises(CommandError, match="not both: exactly one key signs") as exc:
        call_command("audit_checkpoint")
    assert exc.value.returncode == 2
    from audit.checks import check_audit_keys

    assert [error.id for error in check_audit_keys()] == ["audit.E008"]


def test_nothing_is_signed_over_a_record_that_does_not_match_its_hash(tenant, cast, signing_key):
    checkpoint_take(tenant)
    append(tenant, 4)
    seq = ChainHead.objects.get(tenant=tenant).last_seq - 1
    tamper_record(ChangeRecord.objects.get(tenant=tenant, seq=seq), payload={"i": "rewritten"})

    code, out = run(tenant=tenant.slug)

    assert code == 3
    assert f"BROKEN acme: Record #{seq} does not hold (content does not match its hash): nothing was signed." in out
    assert SignedCheckpoint.objects.filter(tenant=tenant).count() == 1


def test_nothing_is_signed_over_a_history_rewritten_behind_the_last_checkpoint(tenant, cast, signing_key):
    signed = checkpoint_take(tenant).checkpoint
    append(tenant, 2)
    rehash_forward(tenant, 3, actor="key:forger")  # every link holds again, up to the head

    with pytest.raises(ChainNotExtended, match=f"Records #1..#{signed.seq} are not the ones signed at #{signed.seq}"):
        checkpoint_take(tenant)
    assert list(SignedCheckpoint.objects.filter(tenant=tenant)) == [signed]


def test_nothing_is_signed_over_a_record_replaced_behind_the_last_checkpoint(tenant, cast, signing_key):
    """The record's hash column changed and the next record's prev_hash with it: every link holds and the
    checkpoint's own record is untouched; only the Merkle root tells."""
    signed = checkpoint_take(tenant).checkpoint
    append(tenant, 1)
    victim = ChangeRecord.objects.get(tenant=tenant, seq=4)
    tamper_record(victim, hash="e" * 64)
    tamper_record(ChangeRecord.objects.get(tenant=tenant, seq=5), prev_hash="e" * 64)

    with pytest.raises(ChainNotExtended, match=r"\(its Merkle root differs\)"):
        checkpoint_take(tenant)
    assert SignedCheckpoint.objects.filter(tenant=tenant).count() == 1 and signed.seq > 5


def test_nothing_is_signed_after_the_tail_was_cut_and_the_head_rewound(tenant, cast, signing_key):
    append(tenant, 3)
    signed = checkpoint_take(tenant).checkpoint
    drop_triggers(AUDIT_TABLE)
    raw_sql(f"DELETE FROM {AUDIT_TABLE} WHERE tenant_id = %s AND seq > %s", [db_id(tenant), signed.seq - 2])
    kept = ChangeRecord.objects.get(tenant=tenant, seq=signed.seq - 2)
    ChainHead.objects.filter(tenant=tenant).update(last_seq=kept.seq, last_hash=kept.hash)

    with pytest.raises(ChainNotExtended, match=f"The chain head is #{kept.seq} but a checkpoint at #{signed.seq}"):
        checkpoint_take(tenant)


def test_a_checkpoint_row_forged_in_the_database_is_not_built_upon(tenant, cast, signing_key):
    checkpoint_take(tenant)
    append(tenant, 1)
    head = ChainHead.objects.get(tenant=tenant)
    forged = signing.KeyRing(signer=signing.load_private_key(signing.generate_private_key_pem())).sign(
        tenant=str(tenant.pk), tenant_slug="acme", seq=head.last_seq, hash=head.last_hash, root="0" * 64,
        time="2026-12-07T19:30:00.000000+00:00",
    )  # fmt: skip
    SignedCheckpoint.objects.create(
        tenant=tenant, seq=head.last_seq, hash=head.last_hash, root="0" * 64,
        signed_at="2026-12-07T19:30:00+00:00", key_id=forged["key_id"], signature=forged["signature"],
    )  # fmt: skip

    with pytest.raises(ChainNotExtended, match=f"newest stored checkpoint \\(#{head.last_seq}\\) does not verify"):
        checkpoint_take(tenant)


def test_signed_checkpoints_are_append_only_in_the_database(tenant, cast, signing_key):
    checkpoint = checkpoint_take(tenant).checkpoint
    with pytest.raises(DatabaseError, match="append-only"):
        raw_sql(f"UPDATE {SIGNED_TABLE} SET hash = %s", ["e" * 64])
    with pytest.raises(DatabaseError, match="cannot be deleted"):
        raw_sql(f"DELETE FROM {SIGNED_TABLE}")
    from arm.errors import Immutable

    with pytest.raises(Immutable):
        checkpoint.save()
    assert SignedCheckpoint.objects.get().hash == checkpoint.hash


def test_an_empty_chain_is_signed_at_seq_zero(signing_key):
    empty = Tenant(slug="empty", name="Empty")
    Tenant._base_manager.bulk_create([empty])  # every saved tenant has its creation recorded: not this one
    checkpoint = checkpoint_take(empty).checkpoint
    assert (checkpoint.seq, checkpoint.hash, checkpoint.root) == (0, "0" * 64, merkle.root([]).hex())


# ---------------------------------------------------------------- the API


def test_the_api_lists_the_tenants_checkpoints_newest_first(tenant, other_tenant, viewer, outsider, signing_key):
    checkpoint_take(tenant)
    append(tenant, 1)
    checkpoint_take(tenant)
    checkpoint_take(other_tenant)

    response = viewer.client.get("/api/v1/audit/checkpoints/")

    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    expected = [c.document("acme") for c in SignedCheckpoint.objects.filter(tenant=tenant).order_by("-seq")]
    assert results == expected and len(results) == 2
    theirs = outsider.client.get("/api/v1/audit/checkpoints/").json()["results"]
    assert [c["tenant"] for c in theirs] == [str(other_tenant.pk)]


def test_compliance_takes_a_checkpoint_through_the_api(tenant, compliance, admin_member, operator, signing_key):
    assert_error(operator.client.post("/api/v1/audit/checkpoints/"), 403, "role_required")

    created = compliance.client.post("/api/v1/audit/checkpoints/")
    again = admin_member.client.post("/api/v1/audit/checkpoints/")

    assert created.status_code == 201 and again.status_code == 200
    assert created.json() == again.json() == SignedCheckpoint.objects.get(tenant=tenant).document("acme")


def test_the_api_answers_409_when_nothing_can_be_signed(tenant, compliance, settings, signing_key):
    checkpoint_take(tenant)
    append(tenant, 1)
    tamper_record(ChangeRecord.objects.filter(tenant=tenant).order_by("-seq").first(), actor="key:forger")
    assert_error(compliance.client.post("/api/v1/audit/checkpoints/"), 409, "chain_broken")
    settings.ARM_AUDIT_SIGNING_KEY_FILE = ""
    assert_error(compliance.client.post("/api/v1/audit/checkpoints/"), 409, "signing_not_configured")


# ---------------------------------------------------------------- published keys and rotation


def test_the_well_known_url_publishes_every_key_unauthenticated(client, tenant, cast, signing_key, tmp_path, settings):
    old = signing.load_private_key(signing_key.read_bytes())
    retired = {"keys": [{**signing.PublicKey(old.public_key()).entry(), "valid_until": None}]}
    (tmp_path / "retired.json").write_text(json.dumps(retired), encoding="utf-8")
    new = tmp_path / "new.pem"
    new.write_bytes(signing.generate_private_key_pem())
    settings.ARM_AUDIT_SIGNING_KEY_FILE = str(new)
    settings.ARM_AUDIT_SIGNING_KEY_VALID_FROM = "2026-12-07T00:00:00+00:00"
    settings.ARM_AUDIT_RETIRED_KEYS_FILE = str(tmp_path / "retired.json")

    response = client.get("/.well-known/arm-audit-keys.json")

    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "public, max-age=300"
    document = response.json()
    assert document["format"] == "arm-audit-keys" and document["version"] == 1
    assert [(k["key_id"], k["status"], k["valid_from"]) for k in document["keys"]] == [
        (
            signing.key_id(signing.load_private_key(new.read_bytes()).public_key()),
            "active",
            "2026-12-07T00:00:00+00:00",
        ),
        (signing.key_id(old.public_key()), "retired", None),
    ]
    assert client.post("/.well-known/arm-audit-keys.json").status_code == 405


def test_the_well_known_url_answers_503_when_the_keys_cannot_be_loaded(client, settings, tmp_path):
    settings.ARM_AUDIT_SIGNING_KEY_FILE = str(tmp_path / "missing.pem")
    response = client.get("/.well-known/arm-audit-keys.json")
    assert response.status_code == 503 and response.json()["code"] == "keys_unavailable"


def test_a_checkpoint_signed_by_a_retired_key_still_verifies_after_rotation(
    tenant, cast, signing_key, tmp_path, settings
):
    old = checkpoint_take(tenant).checkpoint
    retired = tmp_path / "retired.json"
    retired.write_text(json.dumps(configured_keyring().document()), encoding="utf-8")  # as `audit_keys show`
    call_command("audit_keys", "generate", output=str(tmp_path / "new.pem"), stdout=io.StringIO())
    settings.ARM_AUDIT_SIGNING_KEY_FILE = str(tmp_path / "new.pem")
    settings.ARM_AUDIT_RETIRED_KEYS_FILE = str(retired)
    append(tenant, 1)

    new = checkpoint_take(tenant).checkpoint  # builds on the checkpoint of the retired key

    published = signing.parse_keys_document(configured_keyring().document())
    assert new.key_id != old.key_id and set(published) == {old.key_id, new.key_id}
    assert signing.verify_checkpoint(old.document("acme"), published)
    assert signing.verify_checkpoint(new.document("acme"), published)
    only_new = {new.key_id: published[new.key_id]}
    assert signing.verify_checkpoint(old.document("acme"), only_new).reason == (
        f"signed by key {old.key_id}, which is not among the trusted keys"
    )


def test_audit_keys_generate_never_overwrites_and_show_prints_the_document(tmp_path, signing_key):
    out = io.StringIO()
    call_command("audit_keys", "generate", output=str(tmp_path / "k.pem"), stdout=out)
    key = signing.load_private_key((tmp_path / "k.pem").read_bytes())
    assert f"key id {signing.key_id(key.public_key())}" in out.getvalue()
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    with pytest.raises(CommandError, match="never overwritten"):
        call_command("audit_keys", "generate", output=str(tmp_path / "k.pem"))
    shown = io.StringIO()
    call_command("audit_keys", "show", stdout=shown)
    assert json.loads(shown.getvalue()) == configured_keyring().document()


# ---------------------------------------------------------------- concurrency


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a race between connections needs PostgreSQL")
def test_two_processes_signing_one_head_store_one_checkpoint(tenant, cast, signing_key):
    from django.db import connections

    barrier = threading.Barrier(2)
    results, errors = [], []

    def sign():
        try:
            barrier.wait(timeout=10)
            results.append(checkpoint_take(tenant))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sign) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert sorted(r.created for r in results) == [False, True]
    assert {r.checkpoint.pk for r in results} == {SignedCheckpoint.objects.get(tenant=tenant).pk}
