"""Evaluation runs requested by the registry (issue 25 item 5).

When a version enters TESTING and its tenant subscribes to ``evaluation.requested``, the event carries the
version, its genome hash and a **signed, single-use callback URL**; an evaluation harness (a CI job) runs
its suite and POSTs the result there. The result is recorded through ``services.evaluation_record``, so the
existing rules apply unchanged: the latest result sets the version's ``eval_status``, promotion to
CANDIDATE needs PASS, a RETIRED version takes no result.

The callback token, ``<base64 JSON>:<signature>``, is ``django.core.signing`` (HMAC-SHA256 keyed by
``SECRET_KEY`` with this module's salt) over ``{"n": nonce, "v": version id}``. The nonce is stored in an
``EvaluationRequest`` row, so:

- a forged or altered token fails its signature: 404 ``not_found`` (nothing said about why);
- a genuine token whose row is gone (another database) is 404 as well;
- the first result accepted marks the row used by one conditional UPDATE (``used_at IS NULL AND
  expires_at > now``), in the same transaction as the evaluation it records, so two racing posts record
  one result; every later post is 409 ``callback_used``;
- after ``CALLBACK_TTL`` the token is 403 ``callback_expired`` (it was genuine, it authorizes nothing now).

A result that fails validation (400) or is refused by the registry (409 for a RETIRED version) rolls the
claim back with it: the URL stays usable for a corrected post until it expires.

The token is the only credential (no API key): whoever holds the URL may record one result for that
version, which is what the event hands to its subscribers. The result's change record is by
``evaluation-request:<request id>`` with the operator role this one call needs.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from arm.errors import Conflict, DomainError, NotFound
from registry.models import AgentVersion, EvaluationRequest, EvaluationResult
from registry.services import evaluation_record
from tenancy.choices import Role
from tenancy.context import Actor, actor_context

SALT = "arm.registry.evaluation-callback"
# CI queues can hold a job for a long time; a week covers a weekend's backlog. An unused URL is harmless
# after that: it expires, and a new TESTING entry asks again.
CALLBACK_TTL = timedelta(days=7)
DEFAULT_SUITE = "requested-evaluation"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"


class CallbackExpired(DomainError):
    status = 403
    code = "callback_expired"


def _signer() -> signing.Signer:
    return signing.Signer(salt=SALT)


def public_url(path: str) -> str:
    """``path`` made absolute with ARM_PUBLIC_URL (the address receivers reach ARM at)."""
    return getattr(settings, "ARM_PUBLIC_URL", DEFAULT_PUBLIC_URL).rstrip("/") + path


def evaluation_request_open(version: AgentVersion) -> tuple[EvaluationRequest, str]:
    """A new request for ``version`` and its callback token. Call it inside the transaction that hands the
    token out (the event's): a rolled-back event leaves no usable token behind."""
    request = EvaluationRequest.objects.create(
        tenant_id=version.tenant_id,
        version=version,
        nonce=secrets.token_urlsafe(24),
        expires_at=timezone.now() + CALLBACK_TTL,
    )
    token = _signer().sign_object({"n": request.nonce, "v": version.pk.hex})
    return request, token


def callback_url(token: str) -> str:
    return public_url(reverse("evaluation-callback", args=[token]))


def evaluation_requested_data(version: AgentVersion) -> dict:
    """The ``data`` of an ``evaluation.requested`` event for ``version`` (which has just entered TESTING),
    opening its request: the version, its genome hash and the callback (docs/notifications.md)."""
    request, token = evaluation_request_open(version)
    template = version.template
    return {
        "version": {
            "id": str(version.pk),
            "label": version.version_label,
            "template": {"id": str(template.pk), "name": template.name},
            "lifecycle_state": version.lifecycle_state,
            "eval_status": version.eval_status,
            "parent": str(version.parent_id) if version.parent_id else None,
            "genome_hash": version.genome_hash,
            "api_url": public_url(reverse("version-detail", args=[version.pk])),
        },
        "genome_hash": version.genome_hash,
        "callback": {
            "url": callback_url(token),
            "method": "POST",
            "expires_at": request.expires_at.isoformat().replace("+00:00", "Z"),
            "request_id": str(request.pk),
        },
    }


def _read(token: str) -> tuple[str, str]:
    try:
        value = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError, UnicodeError):
        raise NotFound("No such evaluation callback.") from None
    if not (isinstance(value, dict) and isinstance(value.get("n"), str) and isinstance(value.get("v"), str)):
        raise NotFound("No such evaluation callback.")
    return value["n"], value["v"]


def evaluation_callback(
    token: str,
    *,
    status: str,
    score: float | None = None,
    details: dict | None = None,
    url: str = "",
    suite: str = DEFAULT_SUITE,
) -> EvaluationResult:
    """Record the result posted to a callback URL (see the module docstring for every answer)."""
    nonce, version_hex = _read(token)
    with transaction.atomic():
        now = timezone.now()
        mine = EvaluationRequest.objects.filter(nonce=nonce, version_id=version_hex)
        # The one place that decides: the first post claims the row; a racing one waits for the row lock
        # (PostgreSQL) or the write lock (SQLite) and then finds it used.
        if not mine.filter(used_at__isnull=True, expires_at__gt=now).update(used_at=now):
            request = mine.first()
            if request is None:
                raise NotFound("No such evaluation callback.")
            if request.used_at is not None:
                raise Conflict(
                    "This evaluation callback has already recorded its result; each URL takes one.",
                    code="callback_used",
                )
            raise CallbackExpired("This evaluation callback has expired; move the version to TESTING again.")
        request = mine.select_related("version__template", "tenant").get()
        actor = Actor(ref=f"evaluation-request:{request.pk}", roles=frozenset({Role.OPERATOR}))
        details = dict(details or {})
        if url:
            details["url"] = url
        with actor_context(actor, request.tenant):
            result = evaluation_record(
                version=request.version, suite=suite, status=status, score=score, details=details, actor=actor
            )
        EvaluationRequest.objects.filter(pk=request.pk).update(result=result)
    return result
