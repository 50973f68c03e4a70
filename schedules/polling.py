"""Provider health polling (the ``provider_health`` schedule): the requests are made here, through the
SSRF-safe outbound client (``notifications.outbound.request``: the URL checked again at connect time,
no redirects, bounded time and size); what an answer means and what is recorded is the registry's
(``registry.health``).

Each provider is polled on its own interval (``Provider.health_interval_seconds``); the schedule only
looks often (every 15 s by default) for providers that are due, claims them (a conditional UPDATE, so two
workers never poll one provider for one tick) and polls them at once, in a few threads: a slow provider
waits out its own timeout, not the others'. Database work stays in the calling thread."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from registry.choices import ProviderHealth
from registry.health import (
    ProbeAnswer,
    provider_health_record,
    providers_claim_due,
    providers_health_forget_undeclared,
)
from registry.models import Provider

#: Requests made at once; each waits at most its provider's timeout.
MAX_PARALLEL = 8
#: How much of an answer is read: enough to find the expected text in a health document.
MAX_BODY_BYTES = 64 * 1024


def probe(provider: Provider) -> ProbeAnswer:
    """GET the provider's health endpoint once and say what came back (never raises): an answer whatever
    its status, or why there was none (``OutboundError``'s message names the host, never the path)."""
    from notifications import outbound

    started = time.monotonic()
    try:
        response = outbound.request(
            "GET",
            provider.health_endpoint,
            headers={"Accept": "application/json, text/plain, */*"},
            timeout=float(provider.health_timeout_seconds),
            connect_timeout=float(provider.health_timeout_seconds),
            max_bytes=MAX_BODY_BYTES,
        )
    except outbound.UnsafeURL as exc:
        return ProbeAnswer(error=f"refused by ARM's outbound rules: {exc}")
    except outbound.OutboundError as exc:
        return ProbeAnswer(error=str(exc)[:300], latency_ms=_ms(started))
    except Exception as exc:  # never the poll's end: one provider's surprise is its own unhealthy answer
        return ProbeAnswer(error=f"{type(exc).__name__}: {exc}"[:300], latency_ms=_ms(started))
    return ProbeAnswer(status_code=response.status, body=response.body, latency_ms=response.latency_ms)


def _ms(started: float) -> int:
    return max(0, int((time.monotonic() - started) * 1000))


@dataclass
class PollResult:
    polled: int = 0
    healthy: int = 0
    unhealthy: int = 0
    changed: int = 0
    forgotten: int = 0
    changes: list = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"Polled {self.polled} provider(s): {self.healthy} healthy, {self.unhealthy} unhealthy; "
            f"{self.changed} changed health."
        )
        if self.forgotten:
            text += f" {self.forgotten} without an endpoint now unknown."
        return text


def poll_due_providers(*, now: datetime | None = None, prober=probe) -> PollResult:
    """Poll every provider whose check is due and record what each answered (``prober``: the request,
    replaced in tests of the schedule's bookkeeping)."""
    now = now or timezone.now()
    result = PollResult(forgotten=providers_health_forget_undeclared(now=now))
    providers = providers_claim_due(now=now)
    if not providers:
        return result
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(providers))) as pool:
        answers = list(pool.map(prober, providers))
    for provider, answer in zip(providers, answers, strict=True):
        health = provider_health_record(provider=provider, answer=answer, now=timezone.now())
        if health is None:
            continue  # deleted while polled
        result.polled += 1
        if health.after == ProviderHealth.HEALTHY:
            result.healthy += 1
        else:
            result.unhealthy += 1
        if health.changed:
            result.changed += 1
            result.changes.append(health)
    return result
