"""``export_audit`` writes a tenant's chain as JSON Lines; ``verify_audit --file`` (and ``python
audit/chain.py``) check such a file with no database: a round trip holds, and an edited, deleted or
moved record, a cut file and another tenant's record are each named."""

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import rfc8785
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from arm.context import Actor
from audit.chain import GENESIS_HASH, HASH_RULE, RECORD_FIELDS
from audit.choices import EventType
from audit.models import ChangeRecord
from audit.services import record_change
from tests.audit.test_chain import OURS, THEIRS, make_changes

pytestmark = pytest.mark.django_db

REPO = Path(settings.BASE_DIR)
N = OURS + 1  # acme's records in ``chains``: those of test_chain's two_chains, and one more


@pytest.fixture
def chains(tenant, other_tenant, operator, outsider):
    make_changes(tenant, operator.actor, templates=6)  # the cast's records and these: OURS
    record_change(
        tenant=tenant,
        event_type=EventType.TEMPLATE_UPDATED,
        target=tenant,
        payload={"note": "café ✓ \u2028", "ratio": 0.1, "big": 2**53 - 1, "nested": [{"b": 1, "a": None}]},
        actor=Actor.system(),
    )  # N
    make_changes(other_tenant, outsider.actor, templates=3)
    return tenant


def export(tmp_path, slug="acme", name="export.jsonl", **options) -> Path:
    path = tmp_path / name
    call_command("export_audit", tenant=slug, output=str(path), stderr=io.StringIO(), **options)
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8")
    return path


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


def test_export_holds_every_hashed_field_in_seq_order_between_header_and_trailer(chains, tmp_path):
    items = lines(export(tmp_path))
    header, records, trailer = items[0], items[1:-1], items[-1]
    db = list(ChangeRecord.objects.filter(tenant=chains).order_by("seq"))

    assert header["type"] == "header" and header["tenant_slug"] == "acme" and header["tenant"] == str(chains.pk)
    assert header["hash_rule"] == HASH_RULE and header["exported_at"]
    assert header["head"] == {"last_seq": N, "last_hash": db[-1].hash}
    assert trailer == {"type": "trailer", "records": N, "first_seq": 1, "last_seq": N}
    assert [r["seq"] for r in records] == list(range(1, N + 1))
    for line, rec in zip(records, db, strict=True):
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
    for line in lines(export(tmp_path))[1:-1]:
        assert line["prev_hash"] == prev
        digest = hashlib.sha256(line["prev_hash"].encode() + rfc8785.dumps({k: line[k] for k in content}))
        assert digest.hexdigest() == line["hash"]
        prev = line["hash"]


def test_export_contains_only_the_tenants_records(chains, other_tenant, tmp_path):
    ours = lines(export(tmp_path))
    theirs = lines(export(tmp_path, slug="globex", name="globex.jsonl"))
    assert {r["tenant"] for r in ours[1:-1]} == {str(chains.pk)}
    assert {r["tenant"] for r in theirs[1:-1]} == {str(other_tenant.pk)}
    assert len(theirs) == THEIRS + 2


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
    assert len(text.splitlines()) == N + 2  # str.splitlines also splits on U+2028, present in a payload
    assert json.loads(text.splitlines()[-2])["payload"]["note"] == "café ✓ \u2028"


def tampered(path: Path, edit) -> Path:
    items = lines(path)
    edit(items)
    return write(path.with_name("tampered.jsonl"), items)


def test_an_edited_payload_names_that_record(chains, tmp_path, capsys):
    def edit(items):
        items[7]["payload"] = {"changes": {"name": {"before": "x", "after": "evil"}}}  # seq 7

    code, out = verify_file(tampered(export(tmp_path), edit), capsys)
    assert code == 1
    assert "BROKEN acme: first broken record #7 (content does not match its hash); 6 record(s) verified" in out


def test_an_edited_record_rehashed_breaks_the_next_link(chains, tmp_path, capsys):
    from audit.chain import record_hash

    def edit(items):
        items[7]["actor"] = "key:forger"
        items[7]["hash"] = record_hash(items[7]["prev_hash"], items[7])

    code, out = verify_file(tampered(export(tmp_path), edit), capsys)
    assert code == 1
    assert "first broken record #8 (prev_hash does not match the previous record)" in out


def test_a_deleted_line_names_the_gap(chains, tmp_path, capsys):
    code, out = verify_file(tampered(export(tmp_path), lambda items: items.pop(9)), capsys)  # seq 9
    assert code == 1
    assert "first broken record #9 (record #9 is missing); 8 record(s) verified" in out


def test_a_reordered_line_is_named(chains, tmp_path, capsys):
    def swap(items):
        items[5], items[6] = items[6], items[5]  # seq 5 and 6

    code, out = verify_file(tampered(export(tmp_path), swap), capsys)
    assert code == 1
    assert "first broken record #5 (record #5 is out of order (it appears later, on line 7))" in out


def test_a_file_cut_before_its_trailer_is_truncated(chains, tmp_path, capsys):
    path = export(tmp_path)
    cut = path.with_name("cut.jsonl")
    cut.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:-4]), encoding="utf-8")

    code, out = verify_file(cut, capsys)

    assert code == 1
    assert f"first broken record #{N - 2} (the file is truncated: it has no trailer); {N - 3} record(s) verified" in out


def test_a_file_cut_in_the_middle_of_a_line_is_truncated(chains, tmp_path, capsys):
    path = export(tmp_path)
    text = path.read_text(encoding="utf-8")
    cut = path.with_name("cut.jsonl")
    cut.write_text(text[: text.index('"seq":11,') + 20], encoding="utf-8")

    code, out = verify_file(cut, capsys)

    assert code == 1
    assert "first broken record #11 (line 12 is not JSON" in out and "truncated or edited file" in out


def test_records_removed_from_the_end_are_named_against_the_head(chains, tmp_path, capsys):
    def drop_tail(items):
        del items[-4:-1]  # the last three records, trailer kept
        items[-1].update(records=N - 3, last_seq=N - 3)

    code, out = verify_file(tampered(export(tmp_path), drop_tail), capsys)
    assert code == 1
    assert f"first broken record #{N - 2} (the records end at #{N - 3} but the exported chain head is #{N})" in out


def test_a_record_of_another_tenant_is_named(chains, other_tenant, tmp_path, capsys):
    theirs = lines(export(tmp_path, slug="globex", name="globex.jsonl"))

    def splice(items):
        items[3] = theirs[3]  # their seq 3 in place of ours

    code, out = verify_file(tampered(export(tmp_path), splice), capsys)
    assert code == 1
    assert "first broken record #3 (record #3 (line 4) belongs to another tenant)" in out


def test_export_since_a_seq_is_anchored_at_its_prev_hash(chains, tmp_path, capsys):
    path = export(tmp_path, since="5")
    anchor = ChangeRecord.objects.get(tenant=chains, seq=4).hash
    items = lines(path)
    assert [r["seq"] for r in items[1:-1]] == list(range(5, N + 1))

    code, out = verify_file(path, capsys)

    assert code == 0, out
    assert f"verified seq 5..{N} ({N - 4} record(s)), anchored at prev_hash {anchor}" in out


def test_export_since_a_date_starts_at_the_first_record_at_or_after_it(chains, tmp_path, capsys):
    sixth = ChangeRecord.objects.get(tenant=chains, seq=6)
    path = export(tmp_path, since=sixth.created_at.isoformat())
    items = lines(path)
    assert items[1]["seq"] <= 6 and items[-2]["seq"] == N
    assert all(r["created_at"] >= items[1]["created_at"] for r in items[1:-1])
    assert verify_file(path, capsys)[0] == 0
    assert len(lines(export(tmp_path, since="2999-01-01", name="future.jsonl"))) == 2  # header and trailer


def test_bad_since_is_a_usage_error(chains):
    with pytest.raises(CommandError) as exc:
        call_command("export_audit", tenant="acme", since="last tuesday", stdout=io.StringIO())
    assert exc.value.returncode == 2


def test_a_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot read") as exc:
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
    assert code == 1 and "first broken record #2" in out


def _run(args, tmp_path, **env):
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_file_verification_needs_no_reachable_database(chains, tmp_path):
    good = export(tmp_path)
    bad = tampered(good, lambda items: items.pop(4))
    unreachable = {"DATABASE_URL": "postgres://nobody@127.0.0.1:9/nowhere"}

    ok = _run(["manage.py", "verify_audit", "--file", str(good)], tmp_path, **unreachable)
    broken = _run(["manage.py", "verify_audit", "--file", str(bad)], tmp_path, **unreachable)

    assert ok.returncode == 0, ok.stderr
    assert f"OK     acme: verified seq 1..{N}" in ok.stdout
    assert broken.returncode == 1, broken.stderr
    assert "first broken record #4 (record #4 is missing)" in broken.stdout


def test_audit_chain_module_checks_a_file_without_django(chains, tmp_path):
    good = export(tmp_path)
    bad = tampered(good, lambda items: items[9].update(payload={}))
    script = (
        "import runpy, sys; sys.modules['django'] = None; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )

    ok = _run(["-c", script, "audit/chain.py", str(good)], tmp_path)
    broken = _run(["-c", script, "audit/chain.py", str(bad)], tmp_path)

    assert ok.returncode == 0, ok.stderr
    assert f"verified seq 1..{N}" in ok.stdout
    assert broken.returncode == 1, broken.stderr
    assert "first broken record #9 (content does not match its hash)" in broken.stdout
