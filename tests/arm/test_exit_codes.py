"""Every command's exit status (``arm.commandutils.ExitCode``, README "Commands"): 0 done, 2 nothing done
because of what was asked (an unknown tenant or user, bad arguments, an unreadable file, refused input),
3 a check ran and found a problem, 1 the command could not finish (a witness unreachable, a reader that
left). Through ``call_command`` (a CommandError's ``returncode``, a SystemExit's ``code``) and, for what
only a real process shows (argparse, closed pipes, the interpreter's exit), as subprocesses against a
scratch SQLite database of their own."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from arm.commandutils import ExitCode, Progress
from audit import chain, merkle
from audit.models import ChangeRecord
from audit.services import checkpoint_take
from tests.audit.conftest import signing_key  # noqa: F401 (a fixture)
from tests.audit.test_chain import tamper_record
from tests.factories import TemplateFactory, VersionFactory
from tests.helpers import tamper_genome

ROOT = Path(settings.BASE_DIR)


def code_of(*args, **options) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a command run in process, as ``manage.py`` would exit."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err, **options)
        code = 0
    except CommandError as exc:
        code, err = exc.returncode, io.StringIO(err.getvalue() + str(exc))
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_the_standalone_verifiers_use_the_commands_codes():
    assert (ExitCode.OK, ExitCode.FAILED, ExitCode.USAGE, ExitCode.PROBLEM_FOUND) == (0, 1, 2, 3)
    assert chain.PROBLEM_FOUND == merkle.PROBLEM_FOUND == ExitCode.PROBLEM_FOUND


# ---------------------------------------------------------------- 2: usage


@pytest.mark.parametrize(
    "args",
    [
        ["verify_audit", "--tenant", "acne"],
        ["verify_audit", "--full", "--tenant", "acne"],
        ["verify_integrity", "--tenant", "acne"],
        ["export_audit", "--tenant", "acne"],
        ["audit_checkpoint", "--tenant", "acne"],
        ["expire_approvals", "--tenant", "acne"],
        ["create_user", "dana", "--tenant", "acne", "--role", "viewer"],
        ["create_api_key", "--tenant", "acne", "--role", "viewer"],
        ["load_prices", "--tenant", "acne"],
        ["load_fixtures", "fixtures/sample-tenant", "--tenant", "acne"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_a_misspelt_tenant_is_a_usage_error_in_every_command(tenant, signing_key, args):  # noqa: F811
    code, out, err = code_of(*args)

    assert code == ExitCode.USAGE, (out, err)
    assert "No tenant with slug 'acne'." in err


@pytest.mark.parametrize(
    "args",
    [
        ["verify_integrity", "--actor", "nobody"],
        ["create_tenant", "initech", "--actor", "nobody"],
        ["create_tenant", "acme"],  # taken
        ["create_tenant", "Not A Slug!"],
        ["create_api_key", "--tenant", "acme", "--role", "runtime", "--instance", "not-a-uuid"],
        ["create_user", "dana", "--tenant", "acme", "--role", "viewer", "--password", "123"],
        ["load_prices", "--tenant", "acme", "--file", "/nonexistent/prices.json"],
        ["load_prices", "--tenant", "acme", "--file", "README.md"],  # not JSON
        ["load_fixtures", "/nonexistent", "--tenant", "acme"],
        ["export_audit", "--tenant", "acme", "--since", "yesterday"],
        ["export_audit", "--tenant", "acme", "--output", "/nonexistent/dir/export.jsonl"],
        ["verify_audit", "--file", "README.md", "--full"],
        ["verify_audit", "--checkpoints", "/nonexistent"],
        ["audit_keys", "generate", "--output", "README.md"],  # never overwritten
    ],
    ids=lambda args: " ".join(args),
)
def test_refused_arguments_and_input_are_usage_errors(tenant, args):
    code, out, err = code_of(*args)

    assert code == ExitCode.USAGE, (out, err)


def test_a_file_that_is_not_an_export_is_a_usage_error_not_a_broken_one(tmp_path):
    binary = tmp_path / "export.jsonl"
    binary.write_bytes(b"\x00\x01\xff garbage")

    assert code_of("verify_audit", file=str(binary))[0] == ExitCode.USAGE
    assert code_of("verify_audit", file=str(tmp_path / "missing.jsonl"))[0] == ExitCode.USAGE


# ---------------------------------------------------------------- 3: the check found a problem


def test_a_tampered_version_is_a_problem_found(tenant):
    version = VersionFactory(template=TemplateFactory(tenant=tenant))
    assert code_of("verify_integrity")[0] == ExitCode.OK
    tamper_genome(version)

    code, out, _ = code_of("verify_integrity")

    assert code == ExitCode.PROBLEM_FOUND
    assert f"TAMPERED acme {version.template.name}@{version.version_label}" in out


def test_a_broken_chain_is_a_problem_found_in_the_database_and_in_an_export(tenant, cast, signing_key, tmp_path):  # noqa: F811
    good = tmp_path / "good.jsonl"
    assert code_of("export_audit", tenant="acme", output=str(good))[0] == ExitCode.OK
    assert code_of("verify_audit", file=str(good))[0] == ExitCode.OK
    items = [json.loads(line) for line in good.read_text(encoding="utf-8").splitlines()]
    next(item for item in items if item.get("seq") == 2)["actor"] = "key:forger"
    edited = tmp_path / "edited.jsonl"
    edited.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    assert code_of("verify_audit", file=str(edited))[0] == ExitCode.PROBLEM_FOUND

    tamper_record(ChangeRecord.objects.get(tenant=tenant, seq=3), actor="key:forger")

    assert code_of("verify_audit", tenant="acme", full=True)[0] == ExitCode.PROBLEM_FOUND
    assert code_of("verify_audit", tenant="acme")[0] == ExitCode.PROBLEM_FOUND


def test_a_chain_that_does_not_extend_its_checkpoint_stops_signing_and_marks_the_export(
    tenant,
    cast,
    signing_key,  # noqa: F811
    tmp_path,
):
    checkpoint_take(tenant)
    TemplateFactory(tenant=tenant)  # recorded after the checkpoint: recomputed by the next one
    after = ChangeRecord.objects.filter(tenant=tenant).order_by("seq").last()
    tamper_record(after, actor="key:forger")

    code, out, _ = code_of("audit_checkpoint", tenant="acme")
    assert code == ExitCode.PROBLEM_FOUND
    assert out.startswith(f"BROKEN acme: Record #{after.seq} does not hold (content does not match its hash)")

    path = tmp_path / "export.jsonl"
    code, _, err = code_of("export_audit", tenant="acme", output=str(path))
    assert code == ExitCode.PROBLEM_FOUND
    assert "BROKEN acme: the head was not signed" in err
    assert (
        path.read_text(encoding="utf-8").count('"type":"record"') == ChangeRecord.objects.filter(tenant=tenant).count()
    )


# ---------------------------------------------------------------- 1: could not finish, 3: a witness disagrees


def test_a_witness_that_cannot_be_written_fails_the_run_and_one_holding_another_checkpoint_is_a_problem(
    tenant,
    cast,
    signing_key,  # noqa: F811
    tmp_path,
    settings,
):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    settings.ARM_AUDIT_WITNESS_DIR = str(blocked)
    code, out, _ = code_of("audit_checkpoint", push=True)
    assert code == ExitCode.FAILED
    assert f"not pushed to directory {blocked}: cannot write" in out

    witness = tmp_path / "witness"
    settings.ARM_AUDIT_WITNESS_DIR = str(witness)
    assert code_of("audit_checkpoint", push=True)[0] == ExitCode.OK
    (stored,) = (witness / "acme").iterdir()
    forged = json.loads(stored.read_text())
    forged["time"] = "2020-01-01T00:00:00.000000Z"
    stored.write_text(json.dumps(forged))
    code, out, _ = code_of("audit_checkpoint", push=True)
    assert code == ExitCode.PROBLEM_FOUND
    assert "holds a different checkpoint" in out


# ---------------------------------------------------------------- progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_shows_on_a_terminal_or_with_progress_and_never_in_crons_mail(tenant, cast, monkeypatch):
    from audit import services

    monkeypatch.setattr(services, "PROGRESS_EVERY", 2)
    monkeypatch.setitem(Progress.__init__.__kwdefaults__, "every", 0.0)
    records = ChangeRecord.objects.filter(tenant=tenant).count()

    quiet = io.StringIO()
    call_command("verify_audit", tenant="acme", full=True, stdout=io.StringIO(), stderr=quiet)
    assert quiet.getvalue() == ""

    log = io.StringIO()
    call_command("verify_audit", tenant="acme", full=True, progress=True, stdout=io.StringIO(), stderr=log)
    lines = log.getvalue().splitlines()
    assert lines[0].startswith(f"Verifying acme 2/{records} ")
    assert lines[-1].startswith(f"Verifying acme {records}/{records} (100%)")

    terminal = Terminal()
    call_command("export_audit", tenant="acme", stdout=io.StringIO(), stderr=terminal)
    assert f"\rExporting acme [########################] {records}/{records} (100%)" in terminal.getvalue()


def test_seed_demo_names_its_steps_with_progress(db, tmp_path):
    log = io.StringIO()
    call_command(
        "seed_demo", "--keys-file", str(tmp_path / "keys.json"), progress=True, stdout=io.StringIO(), stderr=log
    )

    assert log.getvalue().splitlines() == [
        "Seeding tenants, people, environments, templates, versions and instances…",
        "Seeding acme's policies, decisions and approvals…",
        "Seeding globex's policies, decisions and approvals…",
        "Seeding acme's prices, budgets and 60 days of usage…",
        "Seeding globex's prices, budgets and 60 days of usage…",
        "Seeding acme's notification endpoint (approvers by email)…",
        "Seeding globex's notification endpoint (approvers by email)…",
        "Minting the demo runtime's keys…",
    ]


# ---------------------------------------------------------------- real processes

FILL = """
from django.core.management import call_command
from django.db import transaction
from tenancy.context import Actor
from tenancy.models import Tenant
from audit.choices import EventType
from audit.services import record_change

call_command("create_tenant", "acme")
tenant = Tenant.objects.get(slug="acme")
with transaction.atomic():
    for i in range(3000):
        record_change(
            tenant=tenant, event_type=EventType.TEMPLATE_CHANGED, target=tenant, payload={"i": i, "pad": "x" * 200},
            actor=Actor.system(),
        )
"""


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> dict:
    """The environment of a migrated SQLite database of its own (a process does not see the test
    database), with tenant acme and 3,000 change records: an export of about 1.5 MB."""
    path = tmp_path_factory.mktemp("scratch") / "arm.sqlite3"
    env = {key: value for key, value in os.environ.items() if not key.startswith("ARM_AUDIT_")}
    env.update(DATABASE_URL=f"sqlite:///{path}", PYTHONPATH=str(ROOT))
    for args in (["migrate", "--noinput"], ["shell", "-c", FILL]):
        done = subprocess.run(manage(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    return env


def manage(*args) -> list[str]:
    return [sys.executable, "manage.py", *args]


def to_a_closed_pipe(command: list[str], env: dict) -> subprocess.CompletedProcess:
    """``command > pipe`` whose reader has already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(command, cwd=ROOT, env=env, stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write_end)


def no_traceback(stderr: bytes) -> None:
    for trace in (b"Traceback", b"BrokenPipeError", b"Exception ignored"):
        assert trace not in stderr, stderr.decode(errors="replace")


def test_the_codes_as_a_shell_sees_them(scratch):
    def run(*args):
        return subprocess.run(manage(*args), cwd=ROOT, env=scratch, capture_output=True, text=True, timeout=120)

    typo = run("verify_audit", "--tenant", "acne")
    assert (typo.returncode, typo.stderr.strip()) == (2, "CommandError: No tenant with slug 'acne'.")
    assert run("verify_integrity", "--tenant", "acne").returncode == 2
    assert run("verify_audit", "--frobnicate").returncode == 2  # argparse
    ok = run("verify_audit", "--tenant", "acme")
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == ""  # not a terminal and no --progress: cron mails nothing but a failure


def test_export_audit_into_head_ends_quietly_when_head_has_read_its_line(scratch):
    export = subprocess.Popen(
        manage("export_audit", "--tenant", "acme"),
        cwd=ROOT,
        env=scratch,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    head = subprocess.Popen(["head", "-1"], stdin=export.stdout, stdout=subprocess.PIPE)
    export.stdout.close()  # head holds the only reading end: when it exits, the pipe is closed
    first, _ = head.communicate(timeout=120)
    stderr = export.stderr.read()
    export.stderr.close()

    assert json.loads(first)["type"] == "header"
    assert export.wait(timeout=120) == ExitCode.FAILED  # the export did not reach its end
    no_traceback(stderr)


def test_a_command_whose_output_nobody_reads_exits_1_without_a_traceback(scratch):
    done = to_a_closed_pipe(manage("verify_audit", "--tenant", "acme"), scratch)

    assert done.returncode == ExitCode.FAILED
    no_traceback(done.stderr)


def test_the_standalone_proof_verifier_to_a_closed_pipe(tmp_path):
    proof = tmp_path / "proof.json"
    proof.write_text("{}")  # not a proof: BROKEN
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "audit/merkle.py", str(proof)]

    buffered = to_a_closed_pipe(command, env)  # the verdict is reached, then its line cannot be delivered
    unbuffered = to_a_closed_pipe(command, {**env, "PYTHONUNBUFFERED": "1"})  # the first line already fails

    assert (buffered.returncode, unbuffered.returncode) == (ExitCode.PROBLEM_FOUND, ExitCode.FAILED)
    no_traceback(buffered.stderr)
    no_traceback(unbuffered.stderr)
