"""Configuration: from arguments, else the environment.

- ``ARM_URL``: ARM's base URL (``https://arm.example.com``; the SDK adds ``/api/v1/…`` and ``/otlp/…``).
- ``ARM_API_KEY``: the key sent as ``Authorization: Bearer``; a runtime key, bound to one instance or,
  for a host of many agents, unbound.
- ``ARM_INSTANCE_ID`` (optional): the instance calls are made for when none is given (a bound key's).
- ``ARM_WAIT_URL`` (optional): where ``GET /api/v1/approvals/{id}/wait/`` is sent, when ARM's wait server
  is not behind the same address as the API (``make serve`` runs it on port 8001 beside gunicorn; a proxy
  usually routes that one path to it, and then ``ARM_URL`` serves both).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from .errors import ConfigurationError


@dataclass(frozen=True)
class Config:
    url: str
    api_key: str
    instance: str | None = None
    wait_url: str | None = None
    timeout: float = 10.0
    """Seconds for connecting and for each read (a wait for an approval adds its own wait time)."""
    retries: int = 5
    """Attempts after the first, on 503 and on connection errors (see ``Client``)."""
    backoff: float = 0.25
    """First retry delay in seconds; doubles per attempt (with jitter) up to ``max_backoff``."""
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    """The longest ``Retry-After`` honoured; longer ones are cut to this."""

    @classmethod
    def resolve(
        cls, url: str | None = None, api_key: str | None = None, instance: str | None = None, **options
    ) -> Config:
        url = url or os.environ.get("ARM_URL", "")
        api_key = api_key or os.environ.get("ARM_API_KEY", "")
        instance = instance or os.environ.get("ARM_INSTANCE_ID") or None
        if not url:
            raise ConfigurationError("Set ARM_URL (ARM's base URL) or pass url=.")
        if not api_key:
            raise ConfigurationError("Set ARM_API_KEY (an ARM API key) or pass api_key=.")
        wait_url = options.pop("wait_url", None) or os.environ.get("ARM_WAIT_URL") or None
        config = cls(
            url=url.rstrip("/"),
            api_key=api_key,
            instance=str(instance) if instance else None,
            wait_url=wait_url.rstrip("/") if wait_url else None,
        )
        return replace(config, **{k: v for k, v in options.items() if v is not None})
