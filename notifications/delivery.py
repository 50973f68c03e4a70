"""Sending the outbox: ``drain`` claims due deliveries, sends them and records each attempt.

1. **Claim** (one short transaction): the due deliveries (``pending`` or ``failed``, ``next_attempt_at``
   passed, no live lease), oldest first, ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL so concurrent
   workers take different rows (on SQLite the transaction holds the database's write lock, BEGIN
   IMMEDIATE, so claims are serialized). A conditional UPDATE sets ``lease_until`` and counts the
   attempt. The claim commits before anything is sent.
2. **Send**, outside any transaction: webhooks and Slack through ``notifications.outbound`` (SSRF-safe,
   bounded), several at once on a small thread pool (``ARM_WEBHOOK_CONCURRENCY``); email through
   ``notifications.email.send`` on this thread.
3. **Record** the outcomes as they come in, in batches: only on rows whose lease is still this claim's
   (a worker that overran its lease lost the row to another and records nothing). 2xx: ``succeeded``.
   Anything else (an error, a timeout, a 3xx, a refused address): ``failed`` with the next attempt after
   an exponential backoff with jitter, or ``dead`` after ``ARM_WEBHOOK_MAX_ATTEMPTS`` attempts in the round.

A worker killed between 1 and 3 leaves its lease; when it runs out (``ARM_WEBHOOK_LEASE_SECONDS``) another
worker claims the delivery again. So every committed event is delivered **at least once**, and possibly
more than once: receivers deduplicate by the ``webhook-id`` header (docs/notifications.md).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from notifications import email, outbound, signing, slack
from notifications.choices import AttemptOutcome, DeliveryStatus, EndpointKind
from notifications.models import ERROR_MAX_LENGTH, Delivery, DeliveryAttempt, Endpoint

logger = logging.getLogger("arm.worker")

DUE_STATES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
FLUSH_SECONDS = 0.02  # outcomes are written together when they arrive within this of each other


@dataclass
class Outcome:
    delivery: Delivery
    started_at: datetime
    latency_ms: int | None
    status_code: int | None
    error: str
    final: bool = False  # no retry can succeed (the endpoint was deactivated): dead at once

    @property
    def ok(self) -> bool:
        # an email has no status code: it went when the backend took it without an error
        return not self.error and (self.status_code is None or 200 <= self.status_code < 300)


def due(now: datetime) -> Q:
    return Q(status__in=DUE_STATES, next_attempt_at__lte=now) & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))


def backoff(round_attempts: int) -> timedelta:
    """The wait after the ``round_attempts``-th failed attempt: base × 2^(n−1), at most the maximum, plus up
    to half of it at random so that receivers coming back are not hit by every retry at once."""
    delay = min(
        settings.ARM_WEBHOOK_BACKOFF_BASE_SECONDS * 2 ** max(round_attempts - 1, 0),
        settings.ARM_WEBHOOK_BACKOFF_MAX_SECONDS,
    )
    return timedelta(seconds=delay + random.uniform(0, delay / 2))  # noqa: S311 - jitter, not a secret


def claim(limit: int, ids=None) -> tuple[datetime | None, list[Delivery]]:
    """Lease up to ``limit`` due deliveries (among ``ids`` when given), with their event and endpoint;
    returns the lease's end (the token the outcomes are written under) and the rows."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.ARM_WEBHOOK_LEASE_SECONDS)
    candidates = Delivery.objects.filter(due(now))
    if ids is not None:
        candidates = candidates.filter(pk__in=list(ids))
    # Look before taking locks: an idle worker then only reads (on SQLite a claim's transaction takes the
    # database's write lock, which every writer of the demo would wait for).
    if not candidates.exists():
        return None, []
    candidates = candidates.select_for_update(skip_locked=True)
    with transaction.atomic():
        ids = list(candidates.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
        if not ids:
            return None, []
        Delivery.objects.filter(due(now), pk__in=ids).update(lease_until=lease, attempts=F("attempts") + 1)
        rows = list(Delivery.objects.filter(pk__in=ids, lease_until=lease).select_related("event"))
        # A batch goes to a few endpoints: each read once, not once per row through a join.
        endpoints = Endpoint.objects.in_bulk({row.endpoint_id for row in rows})
        for row in rows:
            row.endpoint = endpoints[row.endpoint_id]
    return lease, rows


def seconds_until_due(now: datetime | None = None) -> float | None:
    """How long until the next delivery is due (a retry, or a lease running out); None: nothing queued."""
    now = now or timezone.now()
    nxt = Delivery.objects.filter(status__in=DUE_STATES).aggregate(
        at=Min(Greatest("next_attempt_at", Coalesce("lease_until", "next_attempt_at")))
    )["at"]
    return None if nxt is None else max((nxt - now).total_seconds(), 0.0)


# ---------------------------------------------------------------- sending one delivery


def _signing_secrets(endpoint, now: datetime) -> list[str]:
    keys = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        keys.append(endpoint.previous_secret)
    return keys


def slack_body(event) -> dict:
    return slack.render(event)


def _prepare_http(delivery: Delivery, now: datetime) -> tuple[bytes, dict]:
    event, endpoint = delivery.event, delivery.endpoint
    if endpoint.kind == EndpointKind.SLACK:
        return orjson.dumps(slack_body(event)), {"Content-Type": "application/json"}
    body = orjson.dumps(event.payload)
    headers = signing.signature_headers(
        msg_id=event.webhook_id, timestamp=now, body=body, signing_secrets=_signing_secrets(endpoint, now)
    )
    return body, {"Content-Type": "application/json", **headers}


def _http(delivery: Delivery, url: str, body: bytes, headers: dict, started: datetime) -> Outcome:
    begun = time.monotonic()
    try:
        response = outbound.request("POST", url, body=body, headers=headers, max_bytes=1024, keep_alive=True)
    except outbound.OutboundError as exc:
        return Outcome(delivery, started, int((time.monotonic() - begun) * 1000), None, str(exc))
    error = "" if 200 <= response.status < 300 else f"answered {response.status}"
    return Outcome(delivery, started, response.latency_ms, response.status, error)


def _email(delivery: Delivery, started: datetime) -> Outcome:
    begun = time.monotonic()
    try:
        email.send(delivery.event, delivery.endpoint)
    except Exception as exc:  # a mail backend's failure is this attempt's outcome, retried like any other
        return Outcome(delivery, started, int((time.monotonic() - begun) * 1000), None, f"email failed: {exc}")
    return Outcome(delivery, started, int((time.monotonic() - begun) * 1000), None, "")


# ---------------------------------------------------------------- recording outcomes


def record(lease: datetime, outcomes: list[Outcome]) -> int:
    """Write the attempts and the deliveries' new states (only rows this lease still holds); returns how
    many were written."""
    if not outcomes:
        return 0
    now = timezone.now()
    by_id = {o.delivery.pk: o for o in outcomes}
    with transaction.atomic():
        rows = list(
            Delivery.objects.select_for_update()
            .filter(pk__in=list(by_id), lease_until=lease)
            .values_list("pk", "attempts", "attempts_at_redelivery")
        )
        updates, attempts = [], []
        for pk, attempt_number, attempts_at_redelivery in rows:
            outcome = by_id[pk]
            round_attempts = attempt_number - attempts_at_redelivery
            delivered_at = next_attempt_at = None
            if outcome.ok:
                status, delivered_at, result = DeliveryStatus.SUCCEEDED, now, AttemptOutcome.SUCCEEDED
            elif outcome.final or round_attempts >= settings.ARM_WEBHOOK_MAX_ATTEMPTS:
                status, result = DeliveryStatus.DEAD, AttemptOutcome.DEAD
            else:
                status, result = DeliveryStatus.FAILED, AttemptOutcome.FAILED
                next_attempt_at = now + backoff(round_attempts)
            error = outcome.error[:ERROR_MAX_LENGTH]
            values = (str(status), delivered_at, next_attempt_at, outcome.status_code, outcome.latency_ms, error)
            updates.append(_update_params(pk, lease, values))
            attempts.append(
                DeliveryAttempt(
                    delivery_id=pk,
                    number=attempt_number,
                    started_at=outcome.started_at,
                    latency_ms=outcome.latency_ms,
                    status_code=outcome.status_code,
                    error=error,
                    outcome=result,
                )
            )
            logger.info(
                "delivery %s %s -> %s: %s%s",
                outcome.delivery.event.webhook_id,
                outcome.delivery.event.type,
                outcome.delivery.endpoint.name,
                result,
                f" ({outcome.error})" if outcome.error else "",
            )
        if updates:
            with connection.cursor() as cursor:
                cursor.executemany(_update_sql(), updates)
        DeliveryAttempt.objects.bulk_create(attempts)
    return len(rows)


# Each recorded outcome is one plain UPDATE of its row, all sent by one executemany (psycopg pipelines them;
# sqlite3 runs one prepared statement): bulk_update's CASE WHEN per row and column cost far more in Python
# than the database spent. The lease stays in the WHERE, as in every write of a claimed row.
_UPDATE_COLUMNS = (
    "status",
    "delivered_at",
    "next_attempt_at",
    "last_status_code",
    "last_latency_ms",
    "last_error",
)


def _update_sql() -> str:
    quote = connection.ops.quote_name
    column = {f.name: quote(f.column) for f in Delivery._meta.concrete_fields}
    assignments = ", ".join(f"{column[name]} = %s" for name in _UPDATE_COLUMNS)
    return (
        f"UPDATE {quote(Delivery._meta.db_table)} SET {assignments}, {column['lease_until']} = NULL "
        f"WHERE {column['id']} = %s AND {column['lease_until']} = %s"
    )


def _update_params(pk, lease, values: tuple) -> list:
    """The UPDATE's parameters, each prepared by its model field for this database (ids and datetimes are
    stored differently by SQLite and PostgreSQL)."""
    meta = Delivery._meta
    columns = zip(_UPDATE_COLUMNS, values, strict=True)
    prepared = [meta.get_field(name).get_db_prep_value(value, connection) for name, value in columns]
    prepared.append(meta.pk.get_db_prep_value(pk, connection))
    prepared.append(meta.get_field("lease_until").get_db_prep_value(lease, connection))
    return prepared


# ---------------------------------------------------------------- drain

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=settings.ARM_WEBHOOK_CONCURRENCY, thread_name_prefix="arm-send")
        return _pool


def drain(limit: int = 100, *, ids=None) -> int:
    """Claim up to ``limit`` due deliveries (among ``ids`` when given), send them and record the outcomes;
    returns how many were claimed (0: nothing was due)."""
    lease, rows = claim(limit, ids)
    if not rows:
        return 0
    now = timezone.now()
    pending: set[Future] = set()
    finished: list[Outcome] = []
    for delivery in rows:
        endpoint = delivery.endpoint
        if not endpoint.active and delivery.event.type != "arm.test":
            finished.append(Outcome(delivery, now, None, None, "The endpoint is inactive.", final=True))
            continue
        if endpoint.kind == EndpointKind.EMAIL:
            finished.append(_email(delivery, timezone.now()))
            continue
        try:
            body, headers = _prepare_http(delivery, timezone.now())
        except Exception as exc:  # a renderer's bug fails this delivery, not the batch
            logger.exception("delivery %s: could not build the request", delivery.event.webhook_id)
            finished.append(Outcome(delivery, now, None, None, f"could not build the request: {type(exc).__name__}"))
            continue
        pending.add(_executor().submit(_http, delivery, endpoint.url, body, headers, timezone.now()))
    record(lease, finished)
    while pending:
        done, pending = wait(pending, timeout=FLUSH_SECONDS, return_when=FIRST_COMPLETED)
        if done and pending:
            # let the others arriving right after join this write
            more, pending = wait(pending, timeout=FLUSH_SECONDS)
            done |= more
        record(lease, [future.result() for future in done])
    return len(rows)
