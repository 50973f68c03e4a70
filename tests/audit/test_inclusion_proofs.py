"""Inclusion proofs (issue 22): one record proven part of a signed checkpoint without the whole chain:
``GET /api/v1/audit/{id}/proof/`` and the offline verifier ``python audit/merkle.py``."""

import json

import pytest

from audit import merkle, signing
from audit.keys import configured_keyring
from audit.models import ChangeRecord
from audit.proofs import path_ranges, streamed_inclusion_proof
from audit.services import checkpoint_take
from registry import services
from tests.audit.test_chain import make_changes, tamper_record
from tests.helpers import assert_error, assert_isolated

pytestmark = pytest.mark.django_db


def url(record, **query) -> str:
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/api/v1/audit/{record.pk}/proof/" + (f"?{suffix}" if suffix else "")


def record(tenant, seq) -> ChangeRecord:
    return ChangeRecord.objects.get(tenant=tenant, seq=seq)


@pytest.fixture
def signed(tenant, operator, signing_key):
    """acme's chain with checkpoints at #first and at its head, and one record after the last checkpoint."""
    first = checkpoint_take(tenant).checkpoint.seq
    make_changes(tenant, operator.actor, templates=5)
    head = checkpoint_take(tenant).checkpoint.seq
    services.template_create(tenant=tenant, actor=operator.actor, name="late", owners=["ops@example.com"])
    return first, head


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 11, 16, 33])
def test_the_streamed_proof_is_the_rfc_path(size):
    leaves = [bytes([i]) * 32 for i in range(size)]
    for index in range(size):
        assert sum(end - start for start, end in path_ranges(index, size)) == size - 1
        leaf, path = streamed_inclusion_proof(iter(leaves), index, size)
        assert leaf == leaves[index]
        assert path == merkle.inclusion_proof(leaves, index)


def test_a_record_is_proven_part_of_the_newest_checkpoint(tenant, viewer, signed, tmp_path):
    first, head = signed
    target = record(tenant, 7)

    response = viewer.client.get(url(target))

    assert response.status_code == 200, response.json()
    proof = response.json()
    assert proof["tree_size"] == head and proof["leaf_index"] == 6
    assert proof["record"]["hash"] == target.hash and proof["record"]["seq"] == 7
    assert proof["checkpoint"]["seq"] == head
    assert signing.verify_checkpoint(proof["checkpoint"], configured_keyring().public_keys())
    hashes = [
        bytes.fromhex(h)
        for h in ChangeRecord.objects.filter(tenant=tenant, seq__lte=head)
        .order_by("seq")
        .values_list("hash", flat=True)
    ]
    assert [bytes.fromhex(h) for h in proof["audit_path"]] == merkle.inclusion_proof(hashes, 6)
    # offline, with the keys the auditor pinned from the well-known URL
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    (tmp_path / "keys.json").write_text(json.dumps(viewer.client.get(signing.WELL_KNOWN_PATH).json()))
    assert merkle.main([str(tmp_path / "proof.json"), "--public-keys", str(tmp_path / "keys.json")]) == 0


def test_a_named_checkpoint_is_used_and_must_cover_the_record(tenant, viewer, signed):
    first, head = signed

    early = viewer.client.get(url(record(tenant, first), checkpoint=first))
    assert early.status_code == 200 and early.json()["tree_size"] == first
    assert_error(viewer.client.get(url(record(tenant, first + 1), checkpoint=first)), 409, "no_checkpoint")
    assert_error(viewer.client.get(url(record(tenant, 2), checkpoint=first + 1)), 409, "unknown_checkpoint")
    assert_error(viewer.client.get(url(record(tenant, 2), checkpoint="seven")), 400, "validation_error")


def test_a_record_after_the_newest_checkpoint_has_no_proof_yet(tenant, viewer, signed):
    _, head = signed
    newest = ChangeRecord.objects.filter(tenant=tenant).order_by("-seq").first()
    assert newest.seq > head

    assert_error(viewer.client.get(url(newest)), 409, "no_checkpoint", contains=["audit_checkpoint"])


def test_a_rewritten_record_gives_no_proof(tenant, viewer, signed):
    first, head = signed
    tamper_record(record(tenant, 3), hash="ab" * 32)  # a superuser's edit of a record the checkpoint covers

    assert_error(viewer.client.get(url(record(tenant, 9))), 409, "chain_broken")


def test_an_edited_proof_fails_offline(tenant, viewer, signed, tmp_path):
    proof = viewer.client.get(url(record(tenant, 4))).json()
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(viewer.client.get(signing.WELL_KNOWN_PATH).json()))
    edits = {
        "another record's hash": lambda p: p["record"].update(hash=record(tenant, 5).hash),
        "edited content": lambda p: p["record"].update(actor="user:mallory"),
        "a path cut short": lambda p: p["audit_path"].pop(),
        "a forged root": lambda p: p["checkpoint"].update(root="00" * 32),
    }
    for name, edit in edits.items():
        forged = json.loads(json.dumps(proof))
        edit(forged)
        path = tmp_path / "forged.json"
        path.write_text(json.dumps(forged))
        assert merkle.main([str(path), "--public-keys", str(keys)]) == 3, name


def test_proofs_are_tenant_isolated(tenant, other_tenant, outsider, viewer, signed):
    assert_isolated(outsider.client, url(record(tenant, 2)))
