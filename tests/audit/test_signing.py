"""The signed checkpoint format (audit/signing.py) as an auditor reads it: the exact body, the key id, the
signature, keys documents and rotation; and the Merkle frontier the verifiers use, against audit.merkle.
No database."""

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import merkle, signing
from audit.chain import MerkleFrontier

TENANT = "0a6a9713-38a2-425d-9774-b55274198cf5"
FIELDS = {
    "tenant": TENANT,
    "seq": 540,
    "hash": "ab" * 32,
    "root": "cd" * 32,
    "time": "2026-12-07T19:30:00.123456+00:00",
}


def ring(**kwargs) -> signing.KeyRing:
    return signing.KeyRing(signer=Ed25519PrivateKey.generate(), **kwargs)


def test_the_body_is_the_documented_text_byte_for_byte():
    assert signing.checkpoint_body(**FIELDS) == (
        b"arm-audit-checkpoint/v1\n"
        b"tenant 0a6a9713-38a2-425d-9774-b55274198cf5\n"
        b"seq 540\n"
        b"hash " + b"ab" * 32 + b"\n"
        b"root " + b"cd" * 32 + b"\n"
        b"time 2026-12-07T19:30:00.123456+00:00\n"
    )


def test_a_checkpoint_verifies_with_nothing_but_hashlib_and_cryptography():
    """README: rebuild the body from the fields, check the key id, verify Ed25519 — written out here
    independently of audit.signing."""
    keyring = ring()
    document = keyring.sign(tenant_slug="acme", **FIELDS)
    entry = keyring.document()["keys"][0]

    raw = base64.b64decode(entry["public_key"])
    assert hashlib.sha256(raw).hexdigest()[:16] == entry["key_id"] == document["key_id"]
    body = "arm-audit-checkpoint/v1\n" + "".join(
        f"{name} {document[name]}\n" for name in ("tenant", "seq", "hash", "root", "time")
    )
    Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(document["signature"]), body.encode())
    assert set(document) == set(signing.FIELDS)
    assert (document["type"], document["format"], document["version"]) == ("checkpoint", "arm-audit-checkpoint", 1)


def test_key_id_is_the_first_16_hex_of_sha256_over_the_raw_public_key():
    key = Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert signing.key_id(key) == hashlib.sha256(raw).hexdigest()[:16]


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 541},
        {"hash": "ac" * 32},
        {"root": "ce" * 32},
        {"time": "2026-12-07T19:30:00.123457+00:00"},
        {"tenant": "1a6a9713-38a2-425d-9774-b55274198cf5"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_any_signed_field_changed_fails_the_signature(change):
    keyring = ring()
    document = keyring.sign(tenant_slug="acme", **FIELDS)
    assert signing.verify_checkpoint(document, keyring.public_keys())

    result = signing.verify_checkpoint({**document, **change}, keyring.public_keys())

    assert not result and result.reason == f"the signature does not verify with key {document['key_id']}"


def test_the_slug_is_not_signed():
    keyring = ring()
    document = keyring.sign(tenant_slug="acme", **FIELDS)
    assert signing.verify_checkpoint({**document, "tenant_slug": "renamed"}, keyring.public_keys())


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"tenant": TENANT.upper()}, "is not a lowercase UUID"),
        ({"tenant": TENANT + "\nseq 1"}, "is not a lowercase UUID"),
        ({"seq": -1}, "is not a whole number"),
        ({"seq": True}, "is not a whole number"),
        ({"seq": "540"}, "is not a whole number"),
        ({"hash": "AB" * 32}, "is not 64 lowercase hex"),
        ({"root": "cd" * 31}, "is not 64 lowercase hex"),
        ({"time": "2026-12-07T19:30:00+00:00"}, "with microseconds"),
        ({"time": "2026-12-07T19:30:00.123456Z"}, "with microseconds"),
        ({"time": "2026-12-07T20:30:00.123456+01:00"}, "with microseconds"),
        ({"seq": 0}, "at seq 0 is 64 zeros"),
    ],
)
def test_each_field_has_exactly_one_spelling(change, reason):
    with pytest.raises(signing.MalformedCheckpoint, match=reason):
        signing.checkpoint_body(**{**FIELDS, **change})
    keyring = ring()
    document = {**keyring.sign(tenant_slug="acme", **FIELDS), **change}
    assert reason in signing.verify_checkpoint(document, keyring.public_keys()).reason


def test_format_time_is_utc_with_microseconds():
    from datetime import datetime, timedelta, timezone

    moment = datetime(2026, 12, 7, 20, 30, tzinfo=timezone(timedelta(hours=1)))
    assert signing.format_time(moment) == "2026-12-07T19:30:00.000000+00:00"


def test_an_unknown_key_id_fails():
    document = ring().sign(tenant_slug="acme", **FIELDS)
    result = signing.verify_checkpoint(document, ring().public_keys())
    assert not result
    assert result.reason == f"signed by key {document['key_id']}, which is not among the trusted keys"


def test_a_checkpoint_of_a_retired_key_verifies_with_the_keys_document():
    old = ring()
    document = old.sign(tenant_slug="acme", **FIELDS)
    rotated = signing.KeyRing(signer=Ed25519PrivateKey.generate(), retired=(old.active,))

    published = signing.parse_keys_document(rotated.document())

    assert [k["status"] for k in rotated.document()["keys"]] == ["active", "retired"]
    assert signing.verify_checkpoint(document, published)


def test_validity_bounds_the_time_a_key_may_have_signed():
    keyring = ring()
    document = keyring.sign(tenant_slug="acme", **FIELDS)  # of 2026-12-07T19:30
    key = keyring.active
    until = signing.PublicKey(key=key.key, status="retired", valid_until="2026-12-07T19:00:00+00:00")
    since = signing.PublicKey(key=key.key, valid_from="2026-12-08T00:00:00+00:00")
    within = signing.PublicKey(key=key.key, valid_from="2026-12-01T00:00:00Z", valid_until="2026-12-31T00:00:00Z")

    assert "is valid until 2026-12-07T19:00:00+00:00" in signing.verify_checkpoint(document, {key.key_id: until}).reason
    assert "is valid from 2026-12-08T00:00:00+00:00" in signing.verify_checkpoint(document, {key.key_id: since}).reason
    assert signing.verify_checkpoint(document, {key.key_id: within})


def test_a_keys_document_whose_key_id_is_not_its_key_is_refused():
    entry = ring().document()["keys"][0]
    with pytest.raises(signing.BadKey, match="is not the id of its public key"):
        signing.parse_keys_document({"keys": [{**entry, "key_id": "0" * 16}]})
    with pytest.raises(signing.BadKey, match="not base64 of a 32-byte Ed25519 key"):
        signing.parse_keys_document({"keys": [{**entry, "public_key": "AAAA"}]})
    with pytest.raises(signing.BadKey, match="not Ed25519"):
        signing.parse_keys_document({"keys": [{**entry, "algorithm": "RSA"}]})
    with pytest.raises(signing.BadKey, match="with its UTC offset"):
        signing.parse_keys_document({"keys": [{**entry, "valid_until": "2026-12-07"}]})


def test_only_ed25519_pem_private_keys_load():
    from cryptography.hazmat.primitives.asymmetric import ec

    assert isinstance(signing.load_private_key(signing.generate_private_key_pem()), Ed25519PrivateKey)
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(signing.BadKey, match="not Ed25519"):
        signing.load_private_key(other)
    with pytest.raises(signing.BadKey, match="not an unencrypted PEM private key"):
        signing.load_private_key(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")


def test_a_keyring_signs_with_one_key_and_lists_it_once():
    keyring = ring()
    with pytest.raises(signing.BadKey, match="also listed as retired"):
        signing.KeyRing(signer=keyring.signer, retired=(keyring.active,))
    with pytest.raises(signing.BadKey, match="no signing key"):
        signing.KeyRing().sign(tenant_slug="acme", **FIELDS)


def test_the_frontier_gives_merkle_root_at_every_size():
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(70)]
    frontier = MerkleFrontier()
    assert frontier.root() == merkle.root([]) == hashlib.sha256(b"").digest()
    for size in range(1, len(leaves) + 1):
        frontier.append(leaves[size - 1])
        assert frontier.root() == merkle.root(leaves[:size]), size
        assert len(frontier.subtrees()) == bin(size).count("1")
        carried = MerkleFrontier.from_subtrees(size, frontier.subtrees())
        carried.append(b"\x07" * 32)
        assert carried.root() == merkle.root([*leaves[:size], b"\x07" * 32])


def test_a_frontier_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="a tree of 5 leaves has 2 perfect subtrees"):
        MerkleFrontier.from_subtrees(5, [b"\x00" * 32])
