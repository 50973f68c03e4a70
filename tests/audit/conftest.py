import pytest

from audit import signing
from audit.choices import EventType
from audit.services import checkpoint_take, record_change
from tenancy.context import Actor
from tests.audit.exports import CAST
from tests.audit.test_chain import OURS, make_changes


@pytest.fixture
def signing_key(tmp_path, settings):
    """A fresh Ed25519 audit signing key in a PEM file, configured as the active key."""
    path = tmp_path / "audit-signing.pem"
    path.write_bytes(signing.generate_private_key_pem())
    settings.ARM_AUDIT_SIGNING_KEY_FILE = str(path)
    settings.ARM_AUDIT_SIGNING_KEY = ""
    settings.ARM_AUDIT_RETIRED_KEYS_FILE = ""
    return path


@pytest.fixture
def chains(tenant, other_tenant, operator, outsider, signing_key):
    """acme's chain of N records with checkpoints signed at #CAST and #OURS (an export signs #N itself), and
    globex's."""
    assert checkpoint_take(tenant).checkpoint.seq == CAST
    make_changes(tenant, operator.actor, templates=6)  # the cast's records and these: OURS
    assert checkpoint_take(tenant).checkpoint.seq == OURS
    record_change(
        tenant=tenant,
        event_type=EventType.TEMPLATE_CHANGED,
        target=tenant,
        payload={"note": "café ✓ \u2028", "ratio": 0.1, "big": 2**53 - 1, "nested": [{"b": 1, "a": None}]},
        actor=Actor.system(),
    )  # N
    make_changes(other_tenant, outsider.actor, templates=3)
    return tenant
