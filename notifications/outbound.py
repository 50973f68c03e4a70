"""Outbound HTTP that cannot be turned against ARM's own network (placeholder, completed below)."""

from __future__ import annotations


class UnsafeURL(ValueError):
    """A URL ARM refuses to call (its message says why, for the form or API field)."""


def check_url(url: str) -> str:
    return url
