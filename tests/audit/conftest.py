import pytest

from audit import signing


@pytest.fixture
def signing_key(tmp_path, settings):
    """A fresh Ed25519 audit signing key in a PEM file, configured as the active key."""
    path = tmp_path / "audit-signing.pem"
    path.write_bytes(signing.generate_private_key_pem())
    settings.ARM_AUDIT_SIGNING_KEY_FILE = str(path)
    settings.ARM_AUDIT_SIGNING_KEY = ""
    settings.ARM_AUDIT_RETIRED_KEYS_FILE = ""
    return path
