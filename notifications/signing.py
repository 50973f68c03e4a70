"""Standard Webhooks signing (https://www.standardwebhooks.com/): the one place ARM signs a request.

Headers: ``webhook-id`` (the event's ``msg_<hex>``, the same on every retry, so receivers deduplicate by
it), ``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``: ``v1,<base64
HMAC-SHA256 of "<id>.<timestamp>.<body>">`` under the endpoint's secret, and a second one, space
separated, under the previous secret while a rotation's overlap lasts. The HMAC is the reference
library's (``standardwebhooks``), which receivers can use to verify.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` + base64 of 32 random bytes (the format receivers' libraries read)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature_headers(*, msg_id: str, timestamp: datetime, body: bytes, signing_secrets: list[str]) -> dict:
    """The three Standard Webhooks headers of one request, signed with each of ``signing_secrets``."""
    signatures = " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in signing_secrets if secret)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
    }
