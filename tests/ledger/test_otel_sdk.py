"""The real OpenTelemetry Python SDK with its OTLP/HTTP exporter, configured only through the standard
environment variables (endpoint and headers), lands ledger entries in a live ARM server."""

from urllib.parse import quote

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from ledger.models import UsageEntry
from tests.factories import make_api_key
from tests.ledger.liveserver import live_server_in_transaction


def _run_agent(provider: TracerProvider) -> list[str]:
    """What an instrumented agent does: a GenAI chat span with usage, a tool span, and a span ARM ignores."""
    tracer = provider.get_tracer("support-bot")
    span_ids = []
    with tracer.start_as_current_span("invoke_agent support-bot"):
        for n in range(3):
            with tracer.start_as_current_span(
                "chat gpt-4.1",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4.1",
                    "gen_ai.usage.input_tokens": 100 + n,
                    "gen_ai.usage.output_tokens": 20,
                },
            ) as span:
                span_ids.append(format(span.get_span_context().span_id, "016x"))
        with tracer.start_as_current_span("GET /crm", attributes={"http.request.method": "GET"}):
            pass
    return span_ids


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_sdk_exporter_lands_entries(monkeypatch, tenant, instance, compression):
    _, secret = make_api_key(tenant, ["runtime"], instance=instance)
    with live_server_in_transaction() as url:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{url}/otlp/v1/traces")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization={quote('Bearer ' + secret)}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", compression)
        provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        span_ids = _run_agent(provider)
        assert provider.force_flush(30_000)
        provider.shutdown()
    entries = list(UsageEntry.objects.order_by("input_tokens"))
    assert [e.input_tokens for e in entries] == [100, 101, 102]
    assert all(e.instance_id == instance.pk and e.source == "otlp" and e.model == "gpt-4.1" for e in entries)
    assert sorted(e.idempotency_key.rsplit(":", 1)[1] for e in entries) == sorted(span_ids)


def test_sdk_with_an_unbound_key_names_the_instance_in_the_resource(monkeypatch, tenant, instance, operator):
    with live_server_in_transaction() as url:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{url}/otlp/v1/traces")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization={quote('Bearer ' + operator.secret)}")
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"arm.instance.id={instance.pk}")
        provider = TracerProvider(resource=Resource.create())
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _run_agent(provider)
        assert provider.force_flush(30_000)
        provider.shutdown()
    assert UsageEntry.objects.filter(instance=instance).count() == 3
