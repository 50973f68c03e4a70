"""``export_audit`` writes a tenant's chain as JSON Lines; ``verify_audit --file`` (and ``python
audit/chain.py``) check such a file with no database: a round trip holds, and an edited, deleted or
moved record, a cut file and another tenant's record are each named."""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import rfc8785
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.chain import GENESIS_HASH, HASH_RULE, RECORD_FIELDS
from audit.keys import configured_keyring
from audit.models import ChangeRecord, SignedCheckpoint
from tests.audit.exports import CAST, REPO, N, export, index, lines, records, write
from tests.audit.test_chain import OURS, THEIRS

pytestmark = pytest.mark.django_db


def verify_file(path, capsys) -> tuple[int, str]:
    try:
        call_command("verify_audit", file=str(path))
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().out


def test_round_trip_export_then_verify(chains, tmp_path, capsys):
    path = export(tmp_path)
    head = ChangeRecord.objects.filter(tenant=chains).order_by("-seq").first()

    code, out = verify_file(path, capsys)

    assert code == 0, out
    assert f"OK     acme: verified seq 1..{N} ({N} record(s)), from genesis; the last record is the exported " in out
    assert f"chain head #{N} {head.hash}" in out
    assert "3 signed checkpoint(s) verified (their Merkle roots recomputed)" in out
    signed = SignedCheckpoint.objects.get(tenant=chains, seq=N).time
    assert f"its end #{N} is covered by the signed checkpoint at #{N} of {signed}: no record up to then was cut" in out


def test_export_holds_every_hashed_field_in_seq_order_between_header_and_trailer(chains, tmp_path):
    items = lines(export(tmp_path))
    header, trailer = items[0], items[-1]
    db = list(ChangeRecord.objects.filter(tenant=chains).order_by("seq"))

    assert header["type"] == "header" and header["tenant_slug"] == "acme" and header["tenant"] == str(chains.pk)
    assert header["hash_rule"] == HASH_RULE and header["exported_at"] and header["format_version"] == 2
    assert header["head"] == {"last_seq": N, "last_hash": db[-1].hash}
    assert header["public_keys"] == configured_keyring().document() and header["frontier"] is None
    assert trailer == {"type": "trailer", "records": N, "first_seq": 1, "last_seq": N}
    assert [r["seq"] for r in records(items)] == list(range(1, N + 1))
    # each signed checkpoint follows the record at its seq, the one signed for the export last
    signed = [SignedCheckpoint.objects.get(tenant=chains, seq=seq).document("acme") for seq in (CAST, OURS, N)]
    assert [items[index(items, seq) + 1] for seq in (CAST, OURS, N)] == signed
    for line, rec in zip(records(items), db, strict=True):
        assert set(line) == {"type", *RECORD_FIELDS}
        assert line["created_at"] == rec.created_at.isoformat()
        assert (line["payload"], line["prev_hash"], line["hash"], line["actor"]) == (
            rec.payload,
            rec.prev_hash,
            rec.hash,
            rec.actor,
        )


def test_the_documented_formula_recomputes_every_exported_hash(chains, tmp_path):
    """README: sha256(prev_hash hex ASCII bytes + RFC 8785 of the eight content fields), written out here
    independently of audit.chain."""
    content = ("tenant", "seq", "event_type", "target_type", "target_id", "actor", "created_at", "payload")
    prev = GENESIS_HASH
    for line in records(lines(export(tmp_path))):
        assert line["prev_hash"] == prev
        digest = hashlib.sha256(line["prev_hash"].encode() + rfc8785.dumps({k: line[k] for k in content}))
        assert digest.hexdigest() == line["hash"]
        prev = line["hash"]


def test_export_contains_only_the_tenants_records(chains, other_tenant, tmp_path):
    ours = lines(export(tmp_path))
    theirs = lines(export(tmp_path, slug="globex", name="globex.jsonl"))
    assert {r["tenant"] for r in records(ours)} == {str(chains.pk)}
    assert {r["tenant"] for r in records(theirs)} == {str(other_tenant.pk)}
    assert len(records(theirs)) == THEIRS


def test_unknown_tenant_is_a_clear_error_with_exit_code_2(chains, tmp_path):
    with pytest.raises(CommandError, match="No tenant with slug 'nope'") as exc:
        call_command("export_audit", tenant="nope", output=str(tmp_path / "x.jsonl"))
    assert exc.value.returncode == 2
    assert not (tmp_path / "x.jsonl").exists()


def test_export_to_standard_output_is_ascii_one_record_a_line(chains):
    out = io.StringIO()
    call_command("export_audit", tenant="acme", stdout=out)
    text = out.getvalue()
    assert text.isascii()
    # header, N records, 3 checkpoints, trailer; str.splitlines also splits on U+2028, present in a payload
    assert len(text.splitlines()) == N + 5
    assert json.loads(text.splitlines()[-3])["payload"]["note"] == "café ✓ \u2028"


def tampered(path: Path, edit) -> Path:
    items = lines(path)
    edit(items)
    return write(path.with_name("tampered.jsonl"), items)


def test_an_edited_payload_names_that_record(chains, tmp_path, capsys):
    def edit(items):
        items[7]["payload"] = {"changes": {"name": {"before": "x", "after": "evil"}}}  # seq 7

    code, out = verify_file(tampered(export(tmp_path), edit), capsys)
    assert code == 3
    assert "BROKEN acme: first broken record #7 (content does not match its hash); 6 record(s) verified" in out


def test_an_edited_record_rehashed_breaks_the_next_link(chains, tmp_path, capsys):
    from audit.chain import record_hash

    def edit(items):
        items[7]["actor"] = "key:forger"
        items[7]["hash"] = record_hash(items[7]["prev_hash"], items[7])

    code, out = verify_file(tampered(export(tmp_path), edit), capsys)
    assert code == 3
    assert "first broken record #8 (prev_hash does not match the previous record)" in out


def test_a_deleted_line_names_the_gap(chains, tmp_path, capsys):
    code, out = verify_file(tampered(export(tmp_path), lambda items: items.pop(9)), capsys)  # seq 9
    assert code == 3
    assert "first broken record #9 (record #9 is missing); 8 record(s) verified" in out


def test_a_reordered_line_is_named(chains, tmp_path, capsys):
    def swap(items):
        items[5], items[6] = items[6], items[5]  # seq 5 and 6

    code, out = verify_file(tampered(export(tmp_path), swap), capsys)
    assert code == 3
    assert "first broken record #5 (record #5 is out of order (it appears later, on line 7))" in out


def test_a_file_cut_before_its_trailer_is_truncated(chains, tmp_path, capsys):
    path = export(tmp_path)
    cut = path.with_name("cut.jsonl")
    kept = path.read_text(encoding="utf-8").splitlines(keepends=True)[: index(lines(path), N - 2) + 1]
    cut.write_text("".join(kept), encoding="utf-8")  # records N-1 and N, the checkpoints after them, the trailer gone

    code, out = verify_file(cut, capsys)

    assert code == 3
    assert f"first broken record #{N - 1} (the file is truncated: it has no trailer); {N - 2} record(s) verified" in out


def test_a_file_cut_in_the_middle_of_a_line_is_truncated(chains, tmp_path, capsys):
    path = export(tmp_path)
    text = path.read_text(encoding="utf-8")
    cut = path.with_name("cut.jsonl")
    cut.write_text(text[: text.index('"seq":11,') + 20], encoding="utf-8")

    code, out = verify_file(cut, capsys)

    assert code == 3
    assert "first broken record #11 (line 12 is not JSON" in out and "truncated or edited file" in out


def test_records_removed_from_the_end_are_named_against_the_head(chains, tmp_path, capsys):
    def drop_tail(items):
        del items[index(items, N - 2) : -1]  # the last three records and the checkpoint at #N, trailer kept
        items[-1].update(records=N - 3, last_seq=N - 3)

    code, out = verify_file(tampered(export(tmp_path), drop_tail), capsys)
    assert code == 3
    assert f"first broken record #{N - 2} (the records end at #{N - 3} but the exported chain head is #{N})" in out


def test_a_record_of_another_tenant_is_named(chains, other_tenant, tmp_path, capsys):
    theirs = lines(export(tmp_path, slug="globex", name="globex.jsonl"))

    def splice(items):
        items[3] = theirs[3]  # their seq 3 in place of ours

    code, out = verify_file(tampered(export(tmp_path), splice), capsys)
    assert code == 3
    assert "first broken record #3 (record #3 (line 4) belongs to another tenant)" in out


def test_export_since_a_seq_starts_right_after_the_signed_checkpoint_before_it(chains, tmp_path, capsys):
    path = export(tmp_path, since=str(CAST + 3))
    items = lines(path)
    assert [r["seq"] for r in records(items)] == list(range(CAST + 1, N + 1))  # rounded down to #CAST + 1
    assert items[1] == SignedCheckpoint.objects.get(tenant=chains, seq=CAST).document("acme")  # the anchor
    assert items[0]["frontier"]["seq"] == CAST

    code, out = verify_file(path, capsys)

    assert code == 0, out
    assert f"verified seq {CAST + 1}..{N} ({N - CAST} record(s)), from the signed checkpoint at #{CAST};" in out
    # the anchor and the checkpoints at OURS and N, their roots recomputed from the carried frontier
    assert "3 signed checkpoint(s) verified (their Merkle roots recomputed)" in out


def test_export_since_a_date_starts_at_the_signed_checkpoint_before_its_first_record(chains, tmp_path, capsys):
    later = ChangeRecord.objects.get(tenant=chains, seq=CAST + 2)
    path = export(tmp_path, since=later.created_at.isoformat())
    items = records(lines(path))
    assert items[0]["seq"] == CAST + 1 and items[-1]["seq"] == N
    assert verify_file(path, capsys)[0] == 0


def test_export_since_beyond_the_head_holds_no_record_and_proves_nothing_alone(chains, tmp_path, capsys):
    path = export(tmp_path, since="2999-01-01", name="future.jsonl")
    head = ChangeRecord.objects.get(tenant=chains, seq=N).hash
    items = lines(path)
    assert [item["type"] for item in items] == ["header", "checkpoint", "trailer"]  # the signed head only

    code, out = verify_file(path, capsys)
    assert code == 3
    assert f"the export holds no records but the chain head is #{N}: an empty export proves nothing" in out

    call_command("verify_audit", file=str(path), anchor=f"{N}:{head}")  # the auditor's last export ended there
    out = capsys.readouterr().out
    assert f"OK     acme: no records after the anchor you named (#{N}); the chain head is #{N}" in out
    assert f"its end #{N} is covered by the signed checkpoint at #{N}" in out


def test_bad_since_is_a_usage_error(chains):
    with pytest.raises(CommandError) as exc:
        call_command("export_audit", tenant="acme", since="last tuesday", stdout=io.StringIO())
    assert exc.value.returncode == 2


def test_a_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read") as exc:
        call_command("verify_audit", file=str(tmp_path / "nope.jsonl"))
    assert exc.value.returncode == 2


def test_file_verification_runs_with_database_access_blocked(chains, tmp_path, capsys, django_db_blocker):
    good = export(tmp_path)
    bad = tampered(good, lambda items: items[2].update(actor="x"))
    with django_db_blocker.block():
        with pytest.raises(RuntimeError, match="Database access not allowed"):
            ChangeRecord.objects.count()  # the blocker is in force
        assert verify_file(good, capsys)[0] == 0
        code, out = verify_file(bad, capsys)
    assert code == 3 and "first broken record #2" in out


def _run(args, tmp_path, **env):
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_file_verification_needs_no_reachable_database(chains, signing_key, tmp_path):
    good = export(tmp_path)
    bad = tampered(good, lambda items: items.pop(4))
    env = {"DATABASE_URL": "postgres://nobody@127.0.0.1:9/nowhere", "ARM_AUDIT_SIGNING_KEY_FILE": str(signing_key)}

    ok = _run(["manage.py", "verify_audit", "--file", str(good)], tmp_path, **env)
    broken = _run(["manage.py", "verify_audit", "--file", str(bad)], tmp_path, **env)

    assert ok.returncode == 0, ok.stderr
    assert f"OK     acme: verified seq 1..{N}" in ok.stdout
    assert "WARNING" not in ok.stdout  # the keys configured on this box are pinned
    assert broken.returncode == 3, broken.stderr
    assert "first broken record #4 (record #4 is missing)" in broken.stdout


def test_audit_chain_module_checks_a_file_without_django(chains, tmp_path):
    good = export(tmp_path)
    bad = tampered(good, lambda items: items[9].update(payload={}))
    keys = tmp_path / "arm-audit-keys.json"
    keys.write_text(json.dumps(configured_keyring().document()), encoding="utf-8")
    script = (
        "import runpy, sys; sys.modules['django'] = None; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )

    ok = _run(["-c", script, "audit/chain.py", str(good), "--public-keys", str(keys)], tmp_path)
    broken = _run(["-c", script, "audit/chain.py", str(bad), "--public-keys", str(keys)], tmp_path)

    assert ok.returncode == 0, ok.stderr
    assert f"verified seq 1..{N}" in ok.stdout and "WARNING" not in ok.stdout
    assert broken.returncode == 3, broken.stderr
    assert "first broken record #9 (content does not match its hash)" in broken.stdout


def test_the_three_module_files_alone_verify_an_export(chains, tmp_path):
    """An auditor copies audit/chain.py, signing.py and merkle.py anywhere (no ARM checkout, no Django)."""
    good = export(tmp_path)
    keys = tmp_path / "arm-audit-keys.json"
    keys.write_text(json.dumps(configured_keyring().document()), encoding="utf-8")
    alone = tmp_path / "verifier"
    alone.mkdir()
    for name in ("chain.py", "signing.py", "merkle.py"):
        shutil.copy(REPO / "audit" / name, alone / name)
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE"}}

    run = subprocess.run(
        [sys.executable, "-E", "-s", str(alone / "chain.py"), str(good), "--public-keys", str(keys)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 0, run.stderr
    assert f"OK     acme: verified seq 1..{N} ({N} record(s)), from genesis" in run.stdout
