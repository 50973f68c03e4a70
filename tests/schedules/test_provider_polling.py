"""Provider health polling against a real local HTTP server, through the SSRF-safe outbound client (its
loopback and plain-http allowances on, as a test or demo sets them): healthy, a wrong status, a missing
text, a timeout, a refused connection; a change is recorded once (PROVIDER_HEALTH_CHANGED with the
answer), recovery is recorded, each provider is polled on its own interval, the outbound rules still
apply, and a provider whose endpoint was removed goes back to unknown."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from audit.choices import EventType
from registry.choices import ProviderHealth
from registry.models import Provider
from registry.services import provider_update
from schedules.polling import poll_due_providers
from tenancy.context import Actor
from tests.factories import ProviderFactory
from tests.helpers import records
from tests.schedules.receiver import HealthServer, closed_port_url

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("outbound_to_localhost"),
]


@pytest.fixture
def outbound_to_localhost():
    with override_settings(ARM_OUTBOUND_ALLOW_PRIVATE=True, ARM_OUTBOUND_ALLOW_HTTP=True):
        yield


@pytest.fixture
def server():
    with HealthServer() as s:
        yield s


def provider_at(tenant, url, **fields):
    return ProviderFactory(tenant=tenant, health_endpoint=url, **fields)


def health_records(provider):
    return [r.payload for r in records(provider, EventType.PROVIDER_HEALTH_CHANGED)]


def set_endpoint(provider, url):
    """An operator edits the provider (the service, with its record)."""
    provider_update(provider=provider, actor=Actor.system(), health_endpoint=url)


def poll_again(now=None):
    Provider.objects.update(health_next_check_at=None)
    return poll_due_providers(now=now or timezone.now())


def test_a_healthy_answer_is_recorded_once(tenant, server):
    provider = provider_at(tenant, server.url("/ok"), health_expected_body="ok")
    result = poll_due_providers()
    assert (result.polled, result.healthy, result.changed) == (1, 1, 1)
    provider.refresh_from_db()
    assert provider.health_state == ProviderHealth.HEALTHY and provider.health_status_code == 200
    assert provider.health_reason == "" and provider.health_checked_at is not None
    [payload] = health_records(provider)
    assert payload["before"] == "unknown" and payload["after"] == "healthy"
    assert payload["status_code"] == 200 and payload["error"] == "" and isinstance(payload["latency_ms"], int)
    poll_again()  # the same answer again: no change, no record
    assert len(health_records(provider)) == 1


def test_a_wrong_status_is_unhealthy_and_recovery_is_recorded(tenant, server):
    provider = provider_at(tenant, server.url("/down"))
    poll_due_providers()
    provider.refresh_from_db()
    assert provider.health_state == ProviderHealth.UNHEALTHY and provider.health_status_code == 503
    assert provider.health_reason == "answered HTTP 503, expected 200"
    set_endpoint(provider, server.url("/ok"))
    poll_again()
    assert [(p["before"], p["after"], p["status_code"]) for p in health_records(provider)] == [
        ("unknown", "unhealthy", 503),
        ("unhealthy", "healthy", 200),
    ]


def test_a_missing_expected_text_is_unhealthy(tenant, server):
    provider = provider_at(tenant, server.url("/ok"), health_expected_body="ready")
    poll_due_providers()
    provider.refresh_from_db()
    assert provider.health_state == ProviderHealth.UNHEALTHY
    assert provider.health_reason == "the answer does not contain 'ready'"


def test_a_provider_that_does_not_answer_in_time_is_unhealthy(tenant, server):
    provider = provider_at(tenant, server.url("/slow"), health_timeout_seconds=1)
    poll_due_providers()
    provider.refresh_from_db()
    assert provider.health_state == ProviderHealth.UNHEALTHY and provider.health_status_code is None
    [payload] = health_records(provider)
    assert payload["after"] == "unhealthy" and payload["status_code"] is None and payload["error"]
    assert "127.0.0.1" in payload["error"] and "/slow" not in payload["error"]  # the host, never the path


def test_a_refused_connection_is_unhealthy(tenant):
    provider = provider_at(tenant, closed_port_url(), health_timeout_seconds=2)
    poll_due_providers()
    provider.refresh_from_db()
    assert provider.health_state == ProviderHealth.UNHEALTHY
    assert provider.health_status_code is None and provider.health_reason


def test_the_outbound_rules_still_apply(tenant, server):
    provider = provider_at(tenant, server.url("/ok"))
    with override_settings(ARM_OUTBOUND_ALLOW_PRIVATE=False):
        poll_due_providers()
    provider.refresh_from_db()
    assert provider.health_state == ProviderHealth.UNHEALTHY
    assert provider.health_reason.startswith("refused by ARM's outbound rules")


def test_each_provider_is_polled_on_its_own_interval(tenant, server):
    now = timezone.now()
    often = provider_at(tenant, server.url("/ok"), health_interval_seconds=10)
    rarely = provider_at(tenant, server.url("/ok"), health_interval_seconds=300)
    assert poll_due_providers(now=now).polled == 2
    assert poll_due_providers(now=now + timedelta(seconds=5)).polled == 0
    assert poll_due_providers(now=now + timedelta(seconds=11)).polled == 1
    often.refresh_from_db()
    rarely.refresh_from_db()
    assert often.health_next_check_at == now + timedelta(seconds=21)
    assert rarely.health_next_check_at == now + timedelta(seconds=300)


def test_providers_without_an_endpoint_are_not_polled_and_forget_their_health(tenant, server):
    silent = ProviderFactory(tenant=tenant)
    provider = provider_at(tenant, server.url("/down"))
    poll_due_providers()
    set_endpoint(provider, "")
    result = poll_again()
    assert result.polled == 0 and result.forgotten == 1
    provider.refresh_from_db()
    silent.refresh_from_db()
    assert provider.health_state == silent.health_state == ProviderHealth.UNKNOWN
    assert health_records(provider)[-1] == {
        "before": "unhealthy",
        "after": "unknown",
        "status_code": None,
        "error": "no health endpoint declared",
        "latency_ms": None,
    }
    assert health_records(silent) == []
