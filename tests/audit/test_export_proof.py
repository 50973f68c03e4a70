"""An export proves its range (issue 22): it starts at genesis or at a signed checkpoint, ends at a signed
checkpoint (or the head the auditor names), and every checkpoint it carries verifies against the keys the
auditor pinned. Each way of editing an export that the audit found passing now fails, with exit status 1;
files that are not exports and bad options exit 2, without a traceback."""

import io
import json
import os
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit import signing
from audit.chain import main as chain_main
from audit.keys import configured_keyring
from audit.models import ChangeRecord, SignedCheckpoint
from tests.audit.exports import CAST, REPO, N, export, index, lines, write
from tests.audit.test_chain import OURS, make_changes

pytestmark = pytest.mark.django_db


def verify(path, capsys, **options) -> tuple[int, str]:
    try:
        call_command("verify_audit", file=str(path), **options)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().out


def edited(path, edit, name="edited.jsonl"):
    items = lines(path)
    edit(items)
    return write(path.with_name(name), items)


def keep_only(items, first_seq, last_seq=N):
    """Keep the records first_seq..last_seq and the checkpoints from first_seq - 1 to last_seq, and make the
    trailer agree, as a careful forger would."""
    middle = [
        item
        for item in items[1:-1]
        if (first_seq if item["type"] == "record" else first_seq - 1) <= item["seq"] <= last_seq
    ]
    count = max(last_seq - first_seq + 1, 0)
    trailer = {"type": "trailer", "records": count, "first_seq": None, "last_seq": None}
    if count:
        trailer.update(first_seq=first_seq, last_seq=last_seq)
    items[:] = [items[0], *middle, trailer]


def record_hash(tenant, seq) -> str:
    return ChangeRecord.objects.get(tenant=tenant, seq=seq).hash


# ---------------------------------------------------------------- the audit's edits


def test_an_export_whose_oldest_records_were_deleted_and_since_set_fails(chains, tmp_path, capsys):
    def cut_the_start(items):
        keep_only(items, 21)
        items[0]["since"] = "21"

    code, out = verify(edited(export(tmp_path), cut_the_start), capsys)

    assert code == 3
    assert "first broken record #21 (nothing anchors record #21, the first of the export: it holds no signed " in out
    assert "checkpoint at #20 (if you know the chain hash of record #20, name it with --anchor 20:HASH)" in out


def test_an_export_with_every_record_deleted_and_since_set_fails(chains, tmp_path, capsys):
    def empty(items):
        keep_only(items, N + 1)
        items[0]["since"] = str(N + 1)

    code, out = verify(edited(export(tmp_path), empty), capsys)

    assert code == 3
    assert f"the export holds no records but the chain head is #{N}: an empty export proves nothing" in out


def test_an_export_that_claims_the_whole_chain_but_starts_later_fails(chains, tmp_path, capsys):
    # cut exactly at a checkpoint, whose line now stands before the first record like an anchor
    code, out = verify(edited(export(tmp_path), lambda items: keep_only(items, CAST + 1)), capsys)

    assert code == 3
    assert f"the header claims the whole chain (since: null) but the export starts at #{CAST + 1}" in out


def test_a_start_cut_at_a_checkpoint_with_a_consistent_header_proves_only_the_later_range(chains, tmp_path, capsys):
    """Such a file is a true statement about records CAST+1..N, and the summary says exactly that; an auditor
    who expects the whole chain names genesis as the anchor."""

    def later(items):
        keep_only(items, CAST + 1)
        items[0]["since"] = str(CAST + 1)

    path = edited(export(tmp_path), later)
    code, out = verify(path, capsys)
    assert code == 0, out
    assert f"verified seq {CAST + 1}..{N} ({N - CAST} record(s)), from the signed checkpoint at #{CAST};" in out

    code, out = verify(path, capsys, anchor=f"0:{'0' * 64}")
    assert code == 3
    assert f"the export does not continue from the anchor you named (#0 {'0' * 64}): it starts after #{CAST}" in out


def test_an_edited_head_fails(chains, tmp_path, capsys):
    def rewind(items):
        items[0]["head"] = {"last_seq": N - 1, "last_hash": record_hash(chains, N - 1)}

    code, out = verify(edited(export(tmp_path), rewind), capsys)
    assert code == 3
    assert f"first broken record #{N} (the last record #{N} does not match the exported chain head #{N - 1})" in out


def test_a_tail_cut_with_the_head_edited_to_match_fails(chains, tmp_path, capsys):
    def cut_the_tail(items):
        keep_only(items, 1, N - 2)
        items[0]["head"] = {"last_seq": N - 2, "last_hash": record_hash(chains, N - 2)}

    code, out = verify(edited(export(tmp_path), cut_the_tail), capsys)

    assert code == 3
    assert f"no signed checkpoint covers the end of the export (#{N - 2}): records cut from its end could not be" in out


def test_a_tail_cut_at_a_checkpoint_says_how_old_the_proven_end_is(chains, tmp_path, capsys):
    """Cut back to an earlier signed checkpoint, the file proves the chain as it was when that checkpoint was
    signed: the summary names the time, and --expect-head with the head the auditor noted fails it."""

    def cut_the_tail(items):
        keep_only(items, 1, OURS)
        items[0]["head"] = {"last_seq": OURS, "last_hash": record_hash(chains, OURS)}

    path = edited(export(tmp_path), cut_the_tail)
    code, out = verify(path, capsys)
    assert code == 0, out
    assert f"covered by the signed checkpoint at #{OURS} of {SignedCheckpoint.objects.get(seq=OURS).time}" in out

    code, out = verify(path, capsys, expect_head=f"{N}:{record_hash(chains, N)}")
    assert code == 3
    assert f"the export ends at #{OURS} {record_hash(chains, OURS)}, not at the head you expected (#{N}" in out


def _fork(tenant, seq: int, **change) -> dict:
    """A checkpoint signed with ARM's own key over another history (what a stolen or misused key makes)."""
    truth = {"hash": record_hash(tenant, seq), "root": "0" * 64}
    return configured_keyring().sign(
        tenant=str(tenant.pk), tenant_slug="acme", seq=seq, time="2026-12-07T19:30:00.000000+00:00", **truth | change
    )


def test_a_checkpoint_in_the_range_whose_hash_differs_from_its_record_fails(chains, tmp_path, capsys):
    fork = _fork(chains, 20, hash="e" * 64)
    code, out = verify(edited(export(tmp_path), lambda items: items.insert(index(items, 20) + 1, fork)), capsys)
    assert code == 3
    assert f"BROKEN acme: the signed checkpoint at #20 (line 23) has hash {'e' * 64} but record #20 has " in out


def test_a_checkpoint_in_the_range_whose_root_differs_fails(chains, tmp_path, capsys):
    fork = _fork(chains, 20)  # the right hash, a root over other records
    code, out = verify(edited(export(tmp_path), lambda items: items.insert(index(items, 20) + 1, fork)), capsys)
    assert code == 3
    assert f"BROKEN acme: the signed checkpoint at #20 (line 23) states Merkle root {'0' * 64}; records #1..#20 " in out


def test_a_bad_signature_fails(chains, tmp_path, capsys):
    def flip(items):
        checkpoint = items[index(items, OURS) + 1]
        signature = bytearray(signing.base64.b64decode(checkpoint["signature"]))
        signature[0] ^= 1
        checkpoint["signature"] = signing.base64.b64encode(bytes(signature)).decode()

    code, out = verify(edited(export(tmp_path), flip), capsys)
    assert code == 3
    key = configured_keyring().active.key_id
    assert (
        f"the checkpoint at #{OURS} (line {OURS + 3}) does not verify: the signature does not verify with key {key}"
        in out
    )


def test_a_file_resigned_with_another_key_fails_against_the_pinned_keys(chains, tmp_path, capsys, settings):
    """A forger makes a key, re-signs every checkpoint and puts the key in the header: pinned keys catch it;
    without pinned keys it passes only with a warning that says why that proves nothing."""
    pinned = tmp_path / "arm-audit-keys.json"
    pinned.write_text(json.dumps(configured_keyring().document()), encoding="utf-8")
    forger = signing.KeyRing(signer=signing.load_private_key(signing.generate_private_key_pem()))

    def resign(items):
        items[0]["public_keys"] = forger.document()
        for position, item in enumerate(items):
            if item["type"] == "checkpoint":
                fields = {k: item[k] for k in ("tenant", "tenant_slug", "seq", "hash", "root", "time")}
                items[position] = forger.sign(**fields)

    path = edited(export(tmp_path), resign)
    code, out = verify(path, capsys, public_keys=str(pinned))
    assert code == 3
    assert (
        f"the checkpoint at #{CAST} (line {CAST + 2}) does not verify: signed by key {forger.active.key_id}, which the "
        "file carries but is not among the keys you pinned" in out
    )

    settings.ARM_AUDIT_SIGNING_KEY_FILE = ""  # a box without keys: nothing pinned
    code, out = verify(path, capsys)
    assert code == 0, out
    assert "WARNING no public keys were pinned: signatures were checked against the keys the file itself carries" in out


def test_an_unknown_key_id_fails(chains, tmp_path, capsys):
    other = tmp_path / "other-keys.json"
    stranger = signing.KeyRing(signer=signing.load_private_key(signing.generate_private_key_pem()))
    other.write_text(json.dumps(stranger.document()), encoding="utf-8")

    code, out = verify(export(tmp_path), capsys, public_keys=str(other))

    assert code == 3
    key = configured_keyring().active.key_id
    assert f"signed by key {key}, which the file carries but is not among the keys you pinned" in out


def test_a_checkpoint_of_a_retired_key_verifies(chains, tmp_path, capsys, settings):
    path = export(tmp_path)  # signed by the key that is about to retire
    retired = tmp_path / "retired.json"
    retired.write_text(json.dumps(configured_keyring().document()), encoding="utf-8")
    new = tmp_path / "new.pem"
    new.write_bytes(signing.generate_private_key_pem())
    settings.ARM_AUDIT_SIGNING_KEY_FILE, settings.ARM_AUDIT_RETIRED_KEYS_FILE = str(new), str(retired)

    code, out = verify(path, capsys)

    assert code == 0, out and "WARNING" not in out


# ---------------------------------------------------------------- anchors and heads the auditor names


def test_without_a_signing_key_the_end_is_proven_only_by_the_head_the_auditor_names(tenant, operator, tmp_path, capsys):
    make_changes(tenant, operator.actor)  # no key configured, nothing signed
    err = io.StringIO()
    call_command("export_audit", tenant="acme", output=str(tmp_path / "x.jsonl"), stderr=err)
    assert "no audit signing key is configured" in err.getvalue()
    head = ChangeRecord.objects.filter(tenant=tenant).order_by("-seq").first()
    path = tmp_path / "x.jsonl"

    code, out = verify(path, capsys)
    assert code == 3 and f"no signed checkpoint covers the end of the export (#{head.seq})" in out
    code, out = verify(path, capsys, expect_head=f"{head.seq}:{head.hash}")
    assert code == 0, out
    assert f"its end #{head.seq} is the head you expected, so no record was cut from the end" in out
    code, out = verify(path, capsys, expect_head=f"{head.seq}:{'f' * 64}")
    assert code == 3 and "not at the head you expected" in out


def test_a_start_without_a_signed_checkpoint_needs_the_anchor_the_auditor_names(chains, tmp_path, capsys):
    err = io.StringIO()
    path = tmp_path / "since.jsonl"
    call_command("export_audit", tenant="acme", since="5", output=str(path), stderr=err)  # no checkpoint before #5
    assert "no signed checkpoint before #5" in err.getvalue()

    assert verify(path, capsys)[0] == 3
    code, out = verify(path, capsys, anchor=f"4:{record_hash(chains, 4)}")
    assert code == 0, out
    assert f"verified seq 5..{N} ({N - 4} record(s)), from the anchor you named (#4);" in out
    code, out = verify(path, capsys, anchor=f"4:{record_hash(chains, 3)}")
    assert code == 3 and "does not continue from the anchor you named" in out


# ---------------------------------------------------------------- usage errors and pipes


def test_a_binary_file_is_a_usage_error(tmp_path, capsys):
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(CommandError, match="is a binary file, not an export") as exc:
        call_command("verify_audit", file=str(binary))
    assert exc.value.returncode == 2
    assert chain_main([str(binary)]) == 2
    assert "is a binary file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--anchor", "12"], "--anchor takes SEQ:HASH"),
        (["--expect-head", "x:" + "0" * 64], "--expect-head takes SEQ:HASH"),
        (["--public-keys", "/nonexistent/keys.json"], "cannot read the public keys"),
    ],
)
def test_bad_options_are_usage_errors(chains, tmp_path, capsys, args, message):
    path = export(tmp_path)
    assert chain_main([str(path), *args]) == 2
    assert message in capsys.readouterr().err
    options = {args[0].lstrip("-").replace("-", "_"): args[1]}
    with pytest.raises(CommandError, match=message) as exc:
        call_command("verify_audit", file=str(path), **options)
    assert exc.value.returncode == 2


def test_unknown_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        chain_main(["a.jsonl", "--frobnicate"])
    assert exc.value.code == 2


def test_the_standalone_verifier_writing_to_a_closed_pipe_ends_without_a_traceback(chains, tmp_path):
    path = export(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # ``… | head`` after head has gone
    try:
        run = subprocess.run(
            [sys.executable, "audit/chain.py", str(path)],
            cwd=REPO,
            stdout=write_end,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert run.returncode == 1
    assert run.stderr == b""


class ClosedPipe(io.TextIOBase):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_export_to_a_closed_pipe_ends_without_a_traceback(chains):
    with pytest.raises(SystemExit) as exc:
        call_command("export_audit", tenant="acme", stdout=ClosedPipe(), stderr=io.StringIO())
    assert exc.value.code == 1
