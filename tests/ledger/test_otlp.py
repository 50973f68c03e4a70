"""POST /otlp/v1/traces: protobuf and JSON, gzip, partial success, authentication and media types."""

import gzip
import json
from datetime import UTC, datetime

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from rest_framework.test import APIClient

from audit.choices import EventType
from ledger.models import UsageEntry
from ledger.otlp import MAX_USAGE_SPANS_PER_EXPORT
from tests.conftest import change_records
from tests.factories import make_api_key
from tests.helpers import assert_error
from tests.ledger.conftest import OTLP
from tests.ledger.factories import PriceFactory

WHEN = datetime(2026, 11, 20, 9, 30, 15, 250000, tzinfo=UTC)
NANOS = int(WHEN.timestamp()) * 1_000_000_000 + 250_000_000


def _kv(key, value) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def genai(**overrides) -> dict:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4.1",
        "gen_ai.response.model": "gpt-4.1-2025-04-14",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 300,
    }
    attrs.update(overrides)
    return {k: v for k, v in attrs.items() if v is not None}


def export(spans, resource=None) -> ExportTraceServiceRequest:
    """``spans``: list of (span id int, attributes)."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(_kv(k, v) for k, v in (resource or {}).items())
    ss = rs.scope_spans.add()
    ss.scope.name = "test"
    for span_id, attrs in spans:
        span = ss.spans.add()
        span.trace_id = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
        span.span_id = span_id.to_bytes(8, "big")
        span.name = "chat gpt-4.1"
        span.start_time_unix_nano = NANOS - 1_000_000_000
        span.end_time_unix_nano = NANOS
        span.attributes.extend(_kv(k, v) for k, v in attrs.items())
    return request


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """The OTLP/JSON encoding: the protobuf JSON mapping with hex (not base64) trace and span ids."""
    body = json_format.MessageToDict(request)
    for rs in body.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId"):
                    import base64

                    span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(body).encode()


@pytest.fixture
def bound_client(tenant, instance):
    _, secret = make_api_key(tenant, ["runtime"], instance=instance)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def post(client, body: bytes, content_type="application/x-protobuf", **headers):
    return client.generic("POST", OTLP, body, content_type=content_type, **headers)


def test_protobuf_spans_become_entries(tenant, instance, bound_client):
    PriceFactory(tenant=tenant, provider="openai", model="gpt-4.1-2025-04-14")  # $2 / $8 per Mtok
    request = export(
        [
            (1, genai()),
            (2, genai(**{"gen_ai.tool.name": "crm.lookup", "gen_ai.operation.name": "execute_tool"})),
            (3, {"http.method": "GET"}),  # not GenAI usage: ignored, not refused
        ]
    )
    response = post(bound_client, request.SerializeToString())
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")
    first, second = UsageEntry.objects.order_by("idempotency_key")
    assert first.idempotency_key == "otlp:4bf92f3577b34da6a3ce929d0e0e4736:0000000000000001"
    assert (first.provider, first.model, first.input_tokens, first.output_tokens) == (
        "openai",
        "gpt-4.1-2025-04-14",
        1200,
        300,
    )
    assert first.occurred_at == WHEN
    assert str(first.cost_usd) == "0.004800" and first.cost_source == "priced"
    assert first.source == "otlp" and first.instance_id == instance.pk
    assert second.tool_name == "crm.lookup"
    [record] = change_records(event_type=EventType.USAGE_INGESTED)
    assert record.payload["source"] == "otlp" and record.payload["accepted"] == 2


def test_json_and_gzip_and_retries_count_once(tenant, instance, bound_client):
    for provider in ("openai", "anthropic"):
        PriceFactory(tenant=tenant, provider=provider, model="gpt-4.1-2025-04-14")
    request = export([(1, genai()), (2, genai(**{"gen_ai.provider.name": None, "gen_ai.system": "anthropic"}))])
    body = otlp_json(request)
    response = post(bound_client, gzip.compress(body), "application/json", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json() == {}
    assert sorted(UsageEntry.objects.values_list("provider", flat=True)) == ["anthropic", "openai"]
    # The exporter retries the same spans (protobuf this time): nothing is counted twice.
    again = post(bound_client, gzip.compress(request.SerializeToString()), HTTP_CONTENT_ENCODING="gzip")
    assert again.status_code == 200
    assert UsageEntry.objects.count() == 2
    assert len(change_records(event_type=EventType.USAGE_INGESTED)) == 1


def test_partial_success_names_the_refused_spans(tenant, instance, other_instance, operator):
    request = export(
        [
            (1, genai()),
            (2, genai(**{"gen_ai.response.model": None, "gen_ai.request.model": None})),
            (3, genai(**{"arm.instance.id": str(other_instance.pk)})),
        ],
        resource={"arm.instance.id": str(instance.pk), "service.name": "support-bot"},
    )
    response = post(operator.client, otlp_json(request), "application/json")
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "2 span(s) refused" in partial["errorMessage"]
    assert "0000000000000002: validation_error: model is required." in partial["errorMessage"]
    assert "0000000000000003: instance_not_found" in partial["errorMessage"]
    assert UsageEntry.objects.get().instance_id == instance.pk


def test_span_without_any_instance_is_refused_with_the_fix(operator):
    response = post(operator.client, export([(7, genai())]).SerializeToString())
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "arm.instance.id" in answer.partial_success.error_message


def test_errors_answer_like_a_collector(instance, bound_client, anon, viewer):
    good = export([(1, genai())]).SerializeToString()
    assert_error(post(anon, good), 401, "not_authenticated")
    assert_error(post(viewer.client, good), 403, "role_required")
    assert_error(post(bound_client, good, "text/plain"), 415, "unsupported_media_type", contains=["x-protobuf"])
    assert_error(post(bound_client, b"\xff\xff\xff", "application/x-protobuf"), 400, "parse_error")
    assert_error(post(bound_client, b"{not json", "application/json"), 400, "parse_error")
    assert_error(post(bound_client, b"\x1f\x8bnope", HTTP_CONTENT_ENCODING="gzip"), 400, "parse_error")
    assert_error(post(bound_client, good, HTTP_CONTENT_ENCODING="br"), 415, "unsupported_media_type")
    usage = [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "5"}}]
    bad_id = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "01", "attributes": usage}]}]}]}
    assert_error(
        post(bound_client, json.dumps(bad_id).encode(), "application/json"), 400, "parse_error", contains=["hex"]
    )
    for malformed in ({"resourceSpans": "x"}, {"resourceSpans": [[1]]}, {"resource_spans": [{"scope_spans": [7]}]}):
        assert_error(post(bound_client, json.dumps(malformed).encode(), "application/json"), 400, "parse_error")
    assert UsageEntry.objects.count() == 0


def test_gzip_bomb_is_refused(settings, bound_client):
    settings.ARM_OTLP_MAX_DECOMPRESSED_BYTES = 10_000
    bomb = gzip.compress(b"\x00" * 50_000)
    assert_error(post(bound_client, bomb, HTTP_CONTENT_ENCODING="gzip"), 413, "payload_too_large")


def test_usage_spans_past_the_limit_are_refused_in_partial_success(tenant, instance, bound_client):
    PriceFactory(tenant=tenant, provider="openai", model="gpt-4.1")
    # Spans without usage (the HTTP ones) are not counted; usage spans past the first 1000 are refused.
    over = 57
    spans = [(i, genai()) for i in range(1, MAX_USAGE_SPANS_PER_EXPORT + over + 1)]
    http = [(10**6 + i, {"http.method": "GET"}) for i in range(300)]
    body = gzip.compress(export(http[:150] + spans + http[150:]).SerializeToString())
    response = post(bound_client, body, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    partial = ExportTraceServiceResponse.FromString(response.content).partial_success
    assert partial.rejected_spans == over
    assert partial.error_message == (
        f"{over} span(s) refused: too_many_spans: {over} GenAI usage span(s) after the first 1000 of this export "
        "(at most 1000 per export: export smaller batches, e.g. the collector's send_batch_max_size)"
    )
    # The first 1000 in the order sent are ingested, as one batch.
    assert UsageEntry.objects.count() == MAX_USAGE_SPANS_PER_EXPORT
    assert UsageEntry.objects.filter(idempotency_key=f"otlp:4bf92f3577b34da6a3ce929d0e0e4736:{1:016x}").exists()
    assert UsageEntry.objects.filter(idempotency_key__endswith=f"{MAX_USAGE_SPANS_PER_EXPORT:016x}").exists()
    assert not UsageEntry.objects.filter(idempotency_key__endswith=f"{MAX_USAGE_SPANS_PER_EXPORT + 1:016x}").exists()
    assert len(change_records(event_type=EventType.USAGE_INGESTED)) == 1


def test_an_export_at_the_limit_is_accepted_whole(tenant, instance, bound_client):
    PriceFactory(tenant=tenant, provider="openai", model="gpt-4.1")
    spans = [(i, genai()) for i in range(1, MAX_USAGE_SPANS_PER_EXPORT + 1)]
    request = export([*spans, (10**6, {"http.method": "GET"})])
    response = post(bound_client, otlp_json(request), "application/json")
    assert response.status_code == 200 and response.json() == {}
    assert UsageEntry.objects.count() == MAX_USAGE_SPANS_PER_EXPORT
    assert UsageEntry.objects.filter(idempotency_key=f"otlp:4bf92f3577b34da6a3ce929d0e0e4736:{1:016x}").exists()


def test_every_gzip_member_is_read_and_a_truncated_stream_refused(instance, bound_client):
    first, second = export([(1, genai())]), export([(2, genai())])
    # Concatenated protobuf messages merge (repeated fields append); so do gzip members (RFC 1952).
    body = gzip.compress(first.SerializeToString()) + gzip.compress(second.SerializeToString())
    assert post(bound_client, body, HTTP_CONTENT_ENCODING="gzip").status_code == 200
    assert UsageEntry.objects.count() == 2
    cut = gzip.compress(export([(3, genai()), (4, genai())]).SerializeToString())[:-12]
    assert_error(post(bound_client, cut, HTTP_CONTENT_ENCODING="gzip"), 400, "parse_error", contains=["end marker"])
    assert UsageEntry.objects.count() == 2


def test_gzip_members_share_one_decompressed_limit(settings, bound_client):
    settings.ARM_OTLP_MAX_DECOMPRESSED_BYTES = 10_000
    member = gzip.compress(b"\x00" * 6_000)
    assert_error(post(bound_client, member + member, HTTP_CONTENT_ENCODING="gzip"), 413, "payload_too_large")


def test_json_spans_without_usage_are_not_decoded_and_the_limit_holds_for_proto_names(instance, bound_client):
    # Spans ARM ignores are dropped before the protobuf parser walks them: a malformed one costs nothing.
    ignored = {"traceId": "not hex", "spanId": "01", "kind": "NO_SUCH_KIND", "attributes": [{"key": "http.method"}]}
    usage = [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "5"}}]
    spans = [
        {
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "span_id": f"{i:016x}",
            "end_time_unix_nano": str(NANOS),
            "attributes": [
                *usage,
                {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4.1"}},
            ],
        }
        for i in range(1, MAX_USAGE_SPANS_PER_EXPORT + 3)
    ]
    # The proto field names (resource_spans, scope_spans) decode too, and count against the same limit.
    body = {"resource_spans": [{"scope_spans": [{"spans": [ignored, *spans]}]}]}
    response = post(bound_client, json.dumps(body).encode(), "application/json")
    assert response.status_code == 200, response.content
    assert response.json()["partialSuccess"]["rejectedSpans"] == "2"
    assert UsageEntry.objects.count() == MAX_USAGE_SPANS_PER_EXPORT
    assert UsageEntry.objects.filter(idempotency_key=f"otlp:4bf92f3577b34da6a3ce929d0e0e4736:{1:016x}").exists()


def test_a_span_resent_with_other_usage_is_refused_as_a_conflict(instance, bound_client):
    assert post(bound_client, export([(1, genai())]).SerializeToString()).status_code == 200
    changed = export([(1, genai(**{"gen_ai.usage.output_tokens": 301})), (2, genai())])
    partial = ExportTraceServiceResponse.FromString(post(bound_client, changed.SerializeToString()).content)
    assert partial.partial_success.rejected_spans == 1
    assert "0000000000000001: idempotency_conflict:" in partial.partial_success.error_message
    assert "output_tokens differ" in partial.partial_success.error_message
    assert (
        UsageEntry.objects.count() == 2 and UsageEntry.objects.get(idempotency_key__endswith="01").output_tokens == 300
    )
