"""Witnesses keep a copy of every signed checkpoint outside ARM and never replace one: a directory (one
file per checkpoint), an S3-compatible bucket (moto, in-process) and a webhook (a local HTTP server)."""

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import boto3
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from moto import mock_aws

from audit import signing
from audit.models import SignedCheckpoint
from audit.services import checkpoint_take
from audit.witness import DirectoryWitness, S3Witness, WebhookWitness, WitnessConflict, WitnessError, encode
from tests.audit.test_checkpoints import append

pytestmark = pytest.mark.django_db

BUCKET = "arm-witness"


@pytest.fixture
def signed(tenant, cast, signing_key) -> dict:
    return checkpoint_take(tenant).checkpoint.document("acme")


def forged(document: dict) -> dict:
    """The same name (tenant slug, seq), different content: what a second writer might try."""
    return {**document, "hash": "e" * 64}


def push(**options) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("audit_checkpoint", push=True, stdout=out, **options)
        return 0, out.getvalue()
    except SystemExit as exc:
        return exc.code, out.getvalue()


# ---------------------------------------------------------------- directory


def test_a_directory_witness_keeps_one_file_per_checkpoint(tenant, signed, tmp_path):
    witness = DirectoryWitness(tmp_path / "witness")

    where = witness.push(signed)

    path = tmp_path / "witness" / "acme" / f"{signed['seq']}.json"
    assert where == str(path)
    assert json.loads(path.read_text()) == signed
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # nothing left aside


def test_a_directory_witness_never_overwrites(signed, tmp_path):
    witness = DirectoryWitness(tmp_path)
    path = witness.push(signed)
    assert witness.push(signed) == path  # the same checkpoint again: a no-op

    with pytest.raises(WitnessConflict, match="holds a different checkpoint; it was left as it is"):
        witness.push(forged(signed))

    assert open(path, "rb").read() == encode(signed)


def test_the_command_pushes_each_new_checkpoint_and_catches_a_witness_up(tenant, signed, tmp_path, settings):
    settings.ARM_AUDIT_WITNESS_DIR = str(tmp_path)
    code, out = push(tenant="acme")  # the head did not move: its checkpoint is pushed (it was not yet)
    assert code == 0, out
    assert f"SAME   acme: the head #{signed['seq']}" in out and f"pushed to {tmp_path}/acme/{signed['seq']}.json" in out

    append(tenant, 2)
    code, out = push(tenant="acme")

    assert code == 0, out
    assert sorted(p.name for p in (tmp_path / "acme").iterdir()) == sorted(
        f"{seq}.json" for seq in (signed["seq"], signed["seq"] + 2)
    )


def test_a_push_refused_by_a_witness_fails_the_command(tenant, signed, tmp_path, settings):
    settings.ARM_AUDIT_WITNESS_DIR = str(tmp_path)
    DirectoryWitness(tmp_path).push(forged(signed))
    code, out = push()
    assert code == 3
    assert f"not pushed to directory {tmp_path}: {tmp_path}/acme/{signed['seq']}.json holds a different" in out


def test_push_without_a_witness_is_a_configuration_error(signed):
    with pytest.raises(CommandError, match="no witness is configured") as exc:
        call_command("audit_checkpoint", push=True)
    assert exc.value.returncode == 2


def test_a_slug_that_cannot_be_a_file_name_files_under_the_tenant_id(signed, tmp_path):
    document = {**signed, "tenant_slug": "../escape"}
    path = DirectoryWitness(tmp_path).push(document)
    assert path == str(tmp_path / signed["tenant"] / f"{signed['seq']}.json")


# ---------------------------------------------------------------- S3


@pytest.fixture
def bucket(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_an_s3_witness_writes_each_checkpoint_once(signed, bucket):
    witness = S3Witness(BUCKET, "audit/", region="us-east-1")
    key = f"audit/acme/{signed['seq']}.json"

    assert witness.push(signed) == f"s3://{BUCKET}/{key}"
    assert witness.push(signed) == f"s3://{BUCKET}/{key}"  # identical: accepted, nothing rewritten
    with pytest.raises(WitnessConflict, match=f"s3://{BUCKET}/{key} holds a different checkpoint"):
        witness.push(forged(signed))

    stored = bucket.get_object(Bucket=BUCKET, Key=key)
    assert stored["Body"].read() == encode(signed) and stored["ContentType"] == "application/json"


def test_the_command_pushes_to_the_configured_bucket(signed, bucket, settings):
    settings.ARM_AUDIT_WITNESS_S3_BUCKET = BUCKET
    settings.ARM_AUDIT_WITNESS_S3_REGION = "us-east-1"
    code, out = push()
    assert code == 0, out
    key = f"{settings.ARM_AUDIT_WITNESS_S3_PREFIX}acme/{signed['seq']}.json"
    assert json.loads(bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read()) == signed


def test_an_unreachable_bucket_is_a_witness_error(signed, bucket):
    with pytest.raises(WitnessError, match="cannot write s3://no-such-bucket/"):
        S3Witness("no-such-bucket", region="us-east-1").push(signed)


# ---------------------------------------------------------------- webhook


class Receiver(BaseHTTPRequestHandler):
    received: list = []
    status = 201

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, dict(self.headers), body))
        self.send_response(type(self).status)
        if type(self).status == 302:
            self.send_header("Location", "/elsewhere")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.received, Receiver.status = [], 201
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_webhook_witness_receives_the_checkpoint(signed, receiver, settings):
    settings.ARM_AUDIT_WITNESS_WEBHOOK_URL = f"{receiver}/checkpoints"
    code, out = push()

    assert code == 0, out
    [(path, headers, body)] = Receiver.received
    assert path == "/checkpoints" and json.loads(body) == signed
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"] == f"{signed['tenant']}:{signed['seq']}"
    assert signing.verify_checkpoint(json.loads(body), signing.parse_keys_document(_published()))


def _published():
    from audit.keys import configured_keyring

    return configured_keyring().document()


@pytest.mark.parametrize("status", [500, 302])
def test_a_webhook_that_does_not_accept_is_a_witness_error_and_redirects_are_not_followed(signed, receiver, status):
    Receiver.status = status
    with pytest.raises(WitnessError, match=f"answered {status}"):
        WebhookWitness(f"{receiver}/checkpoints").push(signed)
    assert [path for path, _, _ in Receiver.received] == ["/checkpoints"]


def test_only_http_webhooks(signed):
    with pytest.raises(WitnessError, match="must be http"):
        WebhookWitness("file:///etc/passwd")
    assert SignedCheckpoint.objects.count() == 1
