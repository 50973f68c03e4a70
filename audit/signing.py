"""Signed checkpoints of the audit chain, in plain Python (the standard library and ``cryptography``; no
Django, no database), so an auditor verifies them with this file alone.

A checkpoint says "tenant T's chain had N records, record N had chain hash H, and the RFC 6962 Merkle
root over the hashes of records 1..N was R, at time t", signed with an Ed25519 key that lives outside
ARM's database. Whoever can rewrite the database cannot sign: a published checkpoint pins the chain up
to N for good (``verify_audit --checkpoints``), and an export proves its range from one
(``verify_audit --file``).

The signed body is UTF-8 text with LF line endings, exactly::

    arm-audit-checkpoint/v1
    tenant <tenant UUID, lowercase>
    seq <N, decimal>
    hash <64 lowercase hex: the chain hash of record N; 64 zeros for N = 0>
    root <64 lowercase hex: RFC 6962 Merkle root over the 32-byte hashes of records 1..N>
    time <ISO 8601 UTC with microseconds, e.g. 2026-12-07T19:30:00.123456+00:00>

(each line ends with LF, the last one too). ``signature`` = standard base64 (padded) of the Ed25519
signature of the body; ``key_id`` = the first 16 hex characters of SHA-256 over the raw 32-byte public
key. The JSON form (witness files, exports, the API)::

    {"type": "checkpoint", "format": "arm-audit-checkpoint", "version": 1, "tenant": "<uuid>",
     "tenant_slug": "acme", "seq": 540, "hash": "…", "root": "…", "time": "…", "key_id": "…",
     "signature": "…"}

A verifier rebuilds the body from the fields; ``tenant_slug`` is informational and not signed.

Public keys are published as a keys document (``/.well-known/arm-audit-keys.json``, and in every export)::

    {"format": "arm-audit-keys", "version": 1, "keys": [{"key_id": "…", "algorithm": "Ed25519",
     "public_key": "<standard base64 of the raw 32 bytes>", "status": "active" | "retired",
     "valid_from": "<ISO 8601>" | null, "valid_until": "<ISO 8601>" | null}]}

A checkpoint verifies against a key whose id it names, whose validity (when stated) includes its time.
The key id is always recomputed from the key itself, never taken from a document.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "arm-audit-checkpoint"
VERSION = 1
BODY_TAG = "arm-audit-checkpoint/v1"
KEYS_FORMAT = "arm-audit-keys"
KEYS_VERSION = 1
ALGORITHM = "Ed25519"
ZERO_HASH = "0" * 64
WELL_KNOWN_PATH = "/.well-known/arm-audit-keys.json"

#: The fields of a checkpoint's JSON form, in the order ARM writes them.
FIELDS = ("type", "format", "version", "tenant", "tenant_slug", "seq", "hash", "root", "time", "key_id", "signature")

# [0-9], not \d: \d matches every Unicode digit.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\+00:00\Z")
_KEY_ID = re.compile(r"[0-9a-f]{16}\Z")


class MalformedCheckpoint(ValueError):
    """A field that cannot be part of a checkpoint body (each has exactly one accepted spelling, so a
    checkpoint has exactly one body)."""


class BadKey(ValueError):
    """A key or keys document that cannot be used (not Ed25519, not PEM, a key id that is not its key's)."""


# ---------------------------------------------------------------- the body


def format_time(moment: datetime) -> str:
    """The one spelling of a checkpoint's time: UTC, microseconds, ``+00:00``."""
    if moment.tzinfo is None:
        raise MalformedCheckpoint("a checkpoint time must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def checkpoint_body(*, tenant: str, seq: int, hash: str, root: str, time: str) -> bytes:
    """The exact bytes that are signed. Raises MalformedCheckpoint for any field not in its one form."""
    if not isinstance(tenant, str) or not _UUID.match(tenant):
        raise MalformedCheckpoint(f"tenant {tenant!r} is not a lowercase UUID")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise MalformedCheckpoint(f"seq {seq!r} is not a whole number >= 0")
    for name, value in (("hash", hash), ("root", root)):
        if not isinstance(value, str) or not _HEX64.match(value):
            raise MalformedCheckpoint(f"{name} {value!r} is not 64 lowercase hex characters")
    if seq == 0 and hash != ZERO_HASH:
        raise MalformedCheckpoint("the hash of a checkpoint at seq 0 is 64 zeros")
    if not isinstance(time, str) or not _TIME.match(time):
        raise MalformedCheckpoint(f"time {time!r} is not ISO 8601 UTC with microseconds (…T19:30:00.123456+00:00)")
    return f"{BODY_TAG}\ntenant {tenant}\nseq {seq}\nhash {hash}\nroot {root}\ntime {time}\n".encode()


# ---------------------------------------------------------------- keys


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """First 16 hex characters of SHA-256 over the raw 32-byte public key."""
    return hashlib.sha256(raw_public_key(key)).hexdigest()[:16]


def load_private_key(pem: bytes | str) -> Ed25519PrivateKey:
    """An unencrypted PKCS#8 PEM Ed25519 private key (``openssl genpkey -algorithm ed25519``)."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BadKey(f"not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadKey(f"the key is {type(key).__name__.removesuffix('PrivateKey') or 'another kind'}, not Ed25519")
    return key


def generate_private_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _moment(value, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadKey(f"{what} {value!r} is not an ISO 8601 date and time with its UTC offset")
    return moment


@dataclass(frozen=True)
class PublicKey:
    """One verification key and when it may have signed (``valid_from``/``valid_until``: ISO 8601 text,
    None when unbounded)."""

    key: Ed25519PublicKey
    status: str = "active"
    valid_from: str | None = None
    valid_until: str | None = None

    def __post_init__(self):
        _moment(self.valid_from, "valid_from")
        _moment(self.valid_until, "valid_until")

    @property
    def key_id(self) -> str:
        return key_id(self.key)

    def entry(self) -> dict:
        return {
            "key_id": self.key_id,
            "algorithm": ALGORITHM,
            "public_key": base64.b64encode(raw_public_key(self.key)).decode("ascii"),
            "status": self.status,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
        }

    def outside_validity(self, time: str) -> str:
        """Why a checkpoint made at ``time`` cannot be this key's ("" when it can)."""
        moment = datetime.fromisoformat(time)
        start, end = _moment(self.valid_from, "valid_from"), _moment(self.valid_until, "valid_until")
        if start is not None and moment < start:
            return f"key {self.key_id} is valid from {self.valid_from}, the checkpoint is of {time}"
        if end is not None and moment > end:
            return f"key {self.key_id} is valid until {self.valid_until}, the checkpoint is of {time}"
        return ""


def keys_document(keys: Iterable[PublicKey]) -> dict:
    """The published keys document (the well-known URL, every export)."""
    return {"format": KEYS_FORMAT, "version": KEYS_VERSION, "keys": [k.entry() for k in keys]}


def parse_key_entry(entry, *, status: str | None = None) -> PublicKey:
    """One entry of a keys document. ``key_id`` and ``algorithm``, when present, must agree with the key;
    ``status`` overrides the entry's (a retired-keys file lists keys that are retired whatever they say)."""
    if not isinstance(entry, Mapping):
        raise BadKey("a key entry is not a JSON object")
    if entry.get("algorithm", ALGORITHM) != ALGORITHM:
        raise BadKey(f"key algorithm {entry.get('algorithm')!r} is not {ALGORITHM}")
    try:
        raw = base64.b64decode(entry.get("public_key") or "", validate=True)
        key = Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError, TypeError):
        raise BadKey(f"public_key {entry.get('public_key')!r} is not base64 of a 32-byte Ed25519 key") from None
    public = PublicKey(
        key=key,
        status=status or str(entry.get("status") or "active"),
        valid_from=entry.get("valid_from"),
        valid_until=entry.get("valid_until"),
    )
    stated = entry.get("key_id")
    if stated is not None and stated != public.key_id:
        raise BadKey(f"key_id {stated!r} is not the id of its public key ({public.key_id})")
    return public


def parse_keys_document(document, *, status: str | None = None) -> dict[str, PublicKey]:
    """{key_id: PublicKey} from a keys document (a JSON object with ``keys``)."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise BadKey(f"not an {KEYS_FORMAT} document (a JSON object with a list of keys)")
    if document.get("format", KEYS_FORMAT) != KEYS_FORMAT:
        raise BadKey(f"format {document.get('format')!r} is not {KEYS_FORMAT}")
    keys = [parse_key_entry(entry, status=status) for entry in document["keys"]]
    return {k.key_id: k for k in keys}


@dataclass(frozen=True)
class KeyRing:
    """The one active signing key (None when ARM signs nothing) and the retired public keys kept for
    verification."""

    signer: Ed25519PrivateKey | None = None
    signer_valid_from: str | None = None
    retired: tuple[PublicKey, ...] = ()

    def __post_init__(self):
        ids = [k.key_id for k in self.retired]
        if self.signer is not None and self.active.key_id in ids:
            raise BadKey(f"the active key {self.active.key_id} is also listed as retired")
        if len(set(ids)) != len(ids):
            raise BadKey("a retired key is listed twice")

    @property
    def active(self) -> PublicKey | None:
        if self.signer is None:
            return None
        return PublicKey(key=self.signer.public_key(), status="active", valid_from=self.signer_valid_from)

    def public_keys(self) -> dict[str, PublicKey]:
        retired = [replace(k, status="retired") for k in self.retired]
        keys = ([self.active] if self.signer is not None else []) + retired
        return {k.key_id: k for k in keys}

    def document(self) -> dict:
        return keys_document(self.public_keys().values())

    def sign(self, *, tenant: str, tenant_slug: str, seq: int, hash: str, root: str, time: str) -> dict:
        """The checkpoint's JSON form, signed with the active key."""
        if self.signer is None:
            raise BadKey("no signing key is configured")
        body = checkpoint_body(tenant=tenant, seq=seq, hash=hash, root=root, time=time)
        return {
            "type": "checkpoint",
            "format": FORMAT,
            "version": VERSION,
            "tenant": tenant,
            "tenant_slug": tenant_slug,
            "seq": seq,
            "hash": hash,
            "root": root,
            "time": time,
            "key_id": self.active.key_id,
            "signature": base64.b64encode(self.signer.sign(body)).decode("ascii"),
        }


# ---------------------------------------------------------------- verification


@dataclass(frozen=True)
class Verified:
    """The result of checking one checkpoint: ``ok``, or ``reason`` why not."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def verify_checkpoint(document, keys: Mapping[str, PublicKey]) -> Verified:
    """Check a checkpoint's JSON form against ``keys`` ({key_id: PublicKey}): its shape, a key with its
    id (recomputed from the key), its time within that key's validity, and the Ed25519 signature over the
    body rebuilt from the fields. Never raises for bad input."""
    if not isinstance(document, Mapping):
        return Verified(False, "not a JSON object")
    if (document.get("type"), document.get("format"), document.get("version")) != ("checkpoint", FORMAT, VERSION):
        return Verified(
            False,
            f"not an {FORMAT} version {VERSION} checkpoint "
            f"({document.get('type')!r}, {document.get('format')!r}, {document.get('version')!r})",
        )
    try:
        body = checkpoint_body(
            tenant=document.get("tenant"),
            seq=document.get("seq"),
            hash=document.get("hash"),
            root=document.get("root"),
            time=document.get("time"),
        )
    except MalformedCheckpoint as exc:
        return Verified(False, str(exc))
    kid = document.get("key_id")
    if not isinstance(kid, str) or not _KEY_ID.match(kid):
        return Verified(False, f"key_id {kid!r} is not 16 lowercase hex characters")
    public = keys.get(kid)
    if public is None:
        return Verified(False, f"signed by key {kid}, which is not among the trusted keys")
    outside = public.outside_validity(document["time"])
    if outside:
        return Verified(False, outside)
    try:
        signature = base64.b64decode(document.get("signature") or "", validate=True)
        public.key.verify(signature, body)
    except (binascii.Error, ValueError, TypeError, InvalidSignature):
        return Verified(False, f"the signature does not verify with key {kid}")
    return Verified(True)
