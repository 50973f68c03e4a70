"""Witnesses: places outside ARM's database that keep a copy of every signed checkpoint, so a later
rewrite of the chain is caught against them (``verify_audit --checkpoints DIR``).

Each witness stores a checkpoint's JSON form under ``<tenant-slug>/<seq>.json`` and never replaces one:
pushing the same checkpoint again is a no-op, a different one at the same name is a ``WitnessConflict``
(ARM signs one checkpoint per seq, so two can only mean a forgery or a second ARM writing there).

- ``DirectoryWitness``: a directory (a mounted archive, a synced folder); the file appears whole or not
  at all (written aside, then hard-linked into place, which fails if the name exists).
- ``S3Witness``: an S3-compatible bucket (boto3, ``pip install 'arm[s3]'``), written with
  ``If-None-Match: *`` so an existing object is never replaced; use a bucket with Object Lock for
  retention.
- ``WebhookWitness``: POSTs the JSON to an operator-configured URL (no redirects followed); the receiver
  keeps it. Delivery is at least once: ``Idempotency-Key: <tenant>:<seq>`` names the checkpoint.

``configured_witnesses`` builds them from the settings (``ARM_AUDIT_WITNESS_*``).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from audit import signing

_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}\Z")


class WitnessError(Exception):
    """A push that did not happen; the message says where and why."""


class WitnessConflict(WitnessError):
    """A different checkpoint is already stored under the same name: nothing was replaced."""


def relative_name(document: dict) -> str:
    """``<tenant-slug>/<seq>.json``; the tenant's UUID when the slug cannot be a file name."""
    slug = document.get("tenant_slug") or ""
    folder = slug if _SAFE_NAME.match(slug) else document["tenant"]
    return f"{folder}/{int(document['seq'])}.json"


def encode(document: dict) -> bytes:
    """One canonical byte form per checkpoint (fields in ``signing.FIELDS`` order), so pushing the same
    checkpoint twice writes the same bytes."""
    return (json.dumps({k: document[k] for k in signing.FIELDS}, separators=(",", ":")) + "\n").encode("ascii")


class DirectoryWitness:
    def __init__(self, root):
        self.root = Path(root)

    def __str__(self) -> str:
        return f"directory {self.root}"

    def push(self, document: dict) -> str:
        """Store the checkpoint; returns its path. Never replaces an existing file."""
        path = self.root / relative_name(document)
        data = encode(document)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            with open(aside, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(aside, path)  # fails when the name exists: never an overwrite, never a torn file
            except FileExistsError:
                if path.read_bytes() != data:
                    raise WitnessConflict(f"{path} holds a different checkpoint; it was left as it is") from None
            finally:
                aside.unlink()
            _fsync_directory(path.parent)
        except WitnessConflict:
            raise
        except OSError as exc:
            raise WitnessError(f"cannot write {path}: {exc.strerror or exc}") from None
        return str(path)


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_directory(root) -> Iterator[tuple[str, dict | None, str]]:
    """Every ``*.json`` file under ``root`` (a witness directory, or any copy of one), in name order:
    (path, its JSON object or None, why it could not be read). Keys documents kept beside the
    checkpoints are skipped."""
    for path in sorted(Path(root).rglob("*.json")):
        if not path.is_file():
            continue
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            yield str(path), None, f"cannot be read as JSON ({exc.__class__.__name__})"
            continue
        if isinstance(document, dict) and document.get("format") == signing.KEYS_FORMAT:
            continue
        if isinstance(document, dict):
            yield str(path), document, ""
        else:
            yield str(path), None, "not a JSON object"


class S3Witness:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url=None, region=None, client=None):
        self.bucket, self.prefix = bucket, prefix
        self.endpoint_url, self.region, self._client = endpoint_url, region, client

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def client(self):
        if self._client is None:
            try:
                import boto3
            except ImportError:
                raise WitnessError("the S3 witness needs boto3: pip install 'arm[s3]'") from None
            self._client = boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region)
        return self._client

    def push(self, document: dict) -> str:
        """PUT the checkpoint unless the key exists (``If-None-Match: *``); an existing identical object
        is success, a different one a WitnessConflict. Returns the object's URL."""
        client = self.client()
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.prefix + relative_name(document)
        data = encode(document)
        where = f"s3://{self.bucket}/{key}"
        try:
            client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json", IfNoneMatch="*")
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status not in (409, 412):  # 412: the key exists; 409: a concurrent conditional write
                raise WitnessError(f"cannot write {where}: {exc}") from None
            try:
                stored = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except (ClientError, BotoCoreError) as read_exc:
                raise WitnessError(f"{where} exists and cannot be read back: {read_exc}") from None
            if stored != data:
                raise WitnessConflict(f"{where} holds a different checkpoint; it was left as it is") from None
        except BotoCoreError as exc:
            raise WitnessError(f"cannot write {where}: {exc}") from None
        return where


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is answered as the error it is, never followed with the checkpoint


class WebhookWitness:
    def __init__(self, url: str, *, timeout: float = 10.0):
        if not url.startswith(("https://", "http://")):
            raise WitnessError(f"the witness webhook URL must be http(s), not {url!r}")
        self.url, self.timeout = url, timeout

    def __str__(self) -> str:
        return f"webhook {self.url}"

    def push(self, document: dict) -> str:
        request = urllib.request.Request(
            self.url,
            data=encode(document),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": f"{document['tenant']}:{document['seq']}",
                "User-Agent": "arm-audit-witness/1",
            },
        )
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise WitnessError(f"{self.url} answered {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise WitnessError(f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}") from None
        if not 200 <= status < 300:
            raise WitnessError(f"{self.url} answered {status}")
        return self.url


def configured_witnesses() -> list:
    """The witnesses the settings name, in the order directory, S3, webhook."""
    witnesses: list = []
    if settings.ARM_AUDIT_WITNESS_DIR:
        witnesses.append(DirectoryWitness(settings.ARM_AUDIT_WITNESS_DIR))
    if settings.ARM_AUDIT_WITNESS_S3_BUCKET:
        witnesses.append(
            S3Witness(
                settings.ARM_AUDIT_WITNESS_S3_BUCKET,
                settings.ARM_AUDIT_WITNESS_S3_PREFIX,
                endpoint_url=settings.ARM_AUDIT_WITNESS_S3_ENDPOINT_URL,
                region=settings.ARM_AUDIT_WITNESS_S3_REGION,
            )
        )
    if settings.ARM_AUDIT_WITNESS_WEBHOOK_URL:
        witnesses.append(
            WebhookWitness(
                settings.ARM_AUDIT_WITNESS_WEBHOOK_URL, timeout=settings.ARM_AUDIT_WITNESS_WEBHOOK_TIMEOUT_SECONDS
            )
        )
    return witnesses
