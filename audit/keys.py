"""The audit signing keys as configured: the settings (``ARM_AUDIT_SIGNING_KEY_FILE`` or
``ARM_AUDIT_SIGNING_KEY``, ``ARM_AUDIT_SIGNING_KEY_VALID_FROM``, ``ARM_AUDIT_RETIRED_KEYS_FILE``) made
into an ``audit.signing.KeyRing``. Read from the files each time it is asked (a few hundred
microseconds), so a rotated key is used without a cache to clear.

Rotation: generate a new key (``manage.py audit_keys generate``), add the current key's entry from
``manage.py audit_keys show`` to the retired keys file (set its ``valid_until`` only when the old key must
stop being trusted, e.g. it leaked), then point the signing key setting at the new file and restart."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from audit import signing


def configured_keyring() -> signing.KeyRing:
    """The active signing key (or none) and the retired keys. ImproperlyConfigured names what is wrong."""
    key_file, key_text = settings.ARM_AUDIT_SIGNING_KEY_FILE, settings.ARM_AUDIT_SIGNING_KEY
    if key_file and key_text:
        raise ImproperlyConfigured(
            "Set ARM_AUDIT_SIGNING_KEY_FILE or ARM_AUDIT_SIGNING_KEY, not both: exactly one key signs."
        )
    try:
        signer = None
        if key_file:
            with open(key_file, "rb") as handle:
                signer = signing.load_private_key(handle.read())
        elif key_text:
            signer = signing.load_private_key(key_text.replace("\\n", "\n"))
    except OSError as exc:
        raise ImproperlyConfigured(f"Cannot read the audit signing key {key_file}: {exc.strerror}") from None
    except signing.BadKey as exc:
        raise ImproperlyConfigured(f"The audit signing key ({key_file or 'ARM_AUDIT_SIGNING_KEY'}): {exc}") from None
    retired_file = settings.ARM_AUDIT_RETIRED_KEYS_FILE
    try:
        retired = _retired_keys(retired_file)
        return signing.KeyRing(
            signer=signer, signer_valid_from=settings.ARM_AUDIT_SIGNING_KEY_VALID_FROM, retired=retired
        )
    except OSError as exc:
        raise ImproperlyConfigured(f"Cannot read the retired audit keys {retired_file}: {exc.strerror}") from None
    except signing.BadKey as exc:
        raise ImproperlyConfigured(f"The audit keys (ARM_AUDIT_RETIRED_KEYS_FILE, *_VALID_FROM): {exc}") from None


def _retired_keys(path: str) -> tuple[signing.PublicKey, ...]:
    if not path:
        return ()
    with open(path, encoding="utf-8") as handle:
        try:
            document = json.load(handle)
        except ValueError as exc:
            raise signing.BadKey(f"{path} is not JSON ({exc})") from None
    return tuple(signing.parse_keys_document(document, status="retired").values())


def pinned_keys() -> dict[str, signing.PublicKey] | None:
    """The keys a verification on this box trusts: the configured ones (None when there are none)."""
    keys = configured_keyring().public_keys()
    return keys or None
