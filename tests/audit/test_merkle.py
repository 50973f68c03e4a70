"""audit/merkle.py against RFC 6962's recursive definition and its published test vectors."""

import hashlib
import json

import pytest

from audit import chain, merkle


def _mth(leaves):
    """RFC 6962 2.1, written the way the RFC states it (recursive), to check the bottom-up code."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _path(index, leaves):
    """RFC 6962 2.1.1 PATH(m, D[n]), recursive."""
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if index < k:
        return _path(index, leaves[:k]) + [_mth(leaves[k:])]
    return _path(index - k, leaves[k:]) + [_mth(leaves[:k])]


LEAVES = [hashlib.sha256(str(i).encode()).digest() for i in range(40)]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 40])
def test_root_matches_the_recursive_definition(size):
    assert merkle.root(LEAVES[:size]) == _mth(LEAVES[:size])


def test_rfc6962_reference_vectors():
    # The eight-leaf tree of the Certificate Transparency reference tests (certificate-transparency-go,
    # merkle/testonly): the leaves are these byte strings, the roots are published for each size.
    leaves = [
        bytes.fromhex(h)
        for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
    ]
    roots = {
        1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    }
    for size, expected in roots.items():
        assert merkle.root(leaves[:size]).hex() == expected


@pytest.mark.parametrize("size", [1, 2, 3, 5, 6, 7, 8, 13, 40])
def test_every_leaf_has_the_rfc_path_and_it_verifies(size):
    leaves = LEAVES[:size]
    top = merkle.root(leaves)
    for index in range(size):
        proof = merkle.inclusion_proof(leaves, index)
        assert proof == _path(index, leaves)
        assert merkle.verify_inclusion(leaves[index], index, size, proof, top)


def test_a_wrong_leaf_index_size_or_path_does_not_verify():
    leaves = LEAVES[:13]
    top = merkle.root(leaves)
    proof = merkle.inclusion_proof(leaves, 5)
    assert not merkle.verify_inclusion(LEAVES[20], 5, 13, proof, top)  # another record
    assert not merkle.verify_inclusion(leaves[5], 6, 13, proof, top)  # another position
    assert not merkle.verify_inclusion(leaves[5], 5, 8, proof, top)  # a tree of another shape
    assert not merkle.verify_inclusion(leaves[5], 5, 13, proof[:-1], top)  # a path cut short
    assert not merkle.verify_inclusion(leaves[5], 5, 13, [*proof, proof[0]], top)  # one too long
    assert not merkle.verify_inclusion(leaves[5], 13, 13, proof, top)  # outside the tree
    with pytest.raises(ValueError):
        merkle.inclusion_proof(leaves, 13)


def test_the_standalone_verifier_reads_a_proof_document(tmp_path, capsys):
    record = {
        "tenant": "7d9f5a4e-0000-4000-8000-000000000001",
        "seq": 4,
        "event_type": "TEMPLATE_CREATED",
        "target_type": "AgentTemplate",
        "target_id": "t-1",
        "actor": "user:alice",
        "created_at": "2026-12-07T19:30:00+00:00",
        "payload": {"name": "bot"},
        "prev_hash": LEAVES[2].hex(),
    }
    record["hash"] = chain.record_hash(record["prev_hash"], record)
    leaves = [*LEAVES[:3], bytes.fromhex(record["hash"]), *LEAVES[4:9]]
    document = {
        "record": record,
        "checkpoint": {"seq": 9, "root": merkle.root(leaves).hex()},
        "audit_path": [item.hex() for item in merkle.inclusion_proof(leaves, 3)],
    }
    good = tmp_path / "proof.json"
    good.write_text(json.dumps(document))
    assert merkle.main([str(good)]) == 0
    out = capsys.readouterr().out
    assert "record #4" in out and "hashes to its hash" in out and "--public-keys" in out

    edited = json.loads(json.dumps(document))
    edited["record"]["actor"] = "user:mallory"
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    assert merkle.main([str(tmp_path / "edited.json")]) == 3
    assert "does not hash to its hash" in capsys.readouterr().out

    document["record"]["hash"] = leaves[4].hex()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    assert merkle.main([str(bad)]) == 3
    assert "NOT included" in capsys.readouterr().out

    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert merkle.main([str(binary)]) == 2
    assert merkle.main([str(good), "--keys"]) == 2
