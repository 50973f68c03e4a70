"""The OTLP/HTTP traces receiver (``POST /otlp/v1/traces``): spans that follow the OpenTelemetry GenAI
semantic conventions become ledger entries through ``ledger.services.usage_ingest``, the one ingestion
path the usage API uses too.

- Encodings: ``application/x-protobuf`` (binary ``ExportTraceServiceRequest``) and ``application/json``
  (the OTLP/JSON mapping: hex trace and span ids, lowerCamelCase keys, unknown fields ignored), each
  optionally ``Content-Encoding: gzip``. Decoded with the ``opentelemetry-proto`` messages and
  ``google.protobuf.json_format``. Anything else is 415; a body that does not decode is 400.
- Authentication: ``Authorization: Bearer <ARM API key>`` (the API's key authentication), a runtime or
  operator key. The instance is the key's bound instance, else the span's or its resource's
  ``arm.instance.id`` attribute.
- A span becomes an entry when it carries ``gen_ai.usage.input_tokens`` or ``gen_ai.usage.output_tokens``;
  other spans (HTTP, database, the agent's own spans) are ignored, not refused. Provider:
  ``gen_ai.provider.name``, else the older ``gen_ai.system`` (a few older names are mapped to the new
  ones); model: ``gen_ai.response.model``, else ``gen_ai.request.model``; tool: ``gen_ai.tool.name``;
  time: the span's end. Optional ARM attributes: ``arm.cost_usd`` (what the call cost, when the runtime
  knows) and ``arm.decision.id``. The idempotency key is ``otlp:<trace_id>:<span_id>``, so an exporter's
  retry never counts a span twice.
- The answer is what a collector answers: 200 with an ``ExportTraceServiceResponse`` in the request's
  encoding, whose ``partial_success`` counts the refused spans and names why (first few), so exporters
  log it and do not retry. Errors before decoding answer ARM's JSON error body.
"""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime

from django.conf import settings
from django.http import HttpResponse
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from rest_framework import exceptions
from rest_framework.views import APIView

from arm.authentication import ApiKeyAuthentication
from ledger import services
from ledger.choices import UsageSource

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# Older gen_ai.system values whose gen_ai.provider.name is spelled differently (semconv 1.37).
PROVIDER_ALIASES = {
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "az.ai.openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
}
MAX_MESSAGES_IN_ERROR = 5


class UnsupportedMediaType(exceptions.UnsupportedMediaType):
    pass


def _any_value(value):
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind in ("array_value", "kvlist_value"):
        return None  # no GenAI attribute ARM reads is a list or a map
    return getattr(value, kind)


def _attributes(key_values) -> dict:
    return {kv.key: _any_value(kv.value) for kv in key_values}


def _hex_to_base64(value):
    if not isinstance(value, str) or not value:
        return value
    try:
        return base64.b64encode(bytes.fromhex(value)).decode()
    except ValueError as exc:
        raise exceptions.ParseError(f"Malformed OTLP/JSON: trace or span id {value[:40]!r} is not hex.") from exc


def _json_ids_to_base64(body) -> None:
    """OTLP/JSON writes trace and span ids as hex; the protobuf JSON mapping reads bytes as base64."""
    for resource_spans in body.get("resourceSpans") or ():
        for scope_spans in (resource_spans or {}).get("scopeSpans") or ():
            for span in (scope_spans or {}).get("spans") or ():
                if not isinstance(span, dict):
                    continue
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = _hex_to_base64(span[key])
                for link in span.get("links") or ():
                    if isinstance(link, dict):
                        for key in ("traceId", "spanId"):
                            if key in link:
                                link[key] = _hex_to_base64(link[key])


def _media_type(request) -> str:
    return (request.META.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()


def _body(request) -> bytes:
    raw = request.body
    encoding = (request.META.get("HTTP_CONTENT_ENCODING") or "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise UnsupportedMediaType(
            encoding, detail=f"Unsupported Content-Encoding {encoding!r}: send gzip or no encoding."
        )
    limit = settings.ARM_OTLP_MAX_DECOMPRESSED_BYTES
    try:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        data = decompressor.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise exceptions.ParseError(f"Malformed gzip body: {exc}.") from exc
    if len(data) > limit or decompressor.unconsumed_tail:
        from arm.api import PayloadTooLarge

        raise PayloadTooLarge(f"The decompressed body exceeds {limit} bytes.")
    return data


def decode(request) -> tuple[ExportTraceServiceRequest, str]:
    media = _media_type(request)
    if media not in (PROTOBUF, JSON):
        raise UnsupportedMediaType(
            media, detail=f"Unsupported Content-Type {media or '(none)'!r}: send {PROTOBUF} or {JSON}."
        )
    data = _body(request)
    message = ExportTraceServiceRequest()
    if media == PROTOBUF:
        try:
            message.ParseFromString(data)
        except DecodeError as exc:
            raise exceptions.ParseError("Malformed OTLP protobuf: not an ExportTraceServiceRequest.") from exc
        return message, media
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise exceptions.ParseError(f"Malformed OTLP/JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise exceptions.ParseError("Malformed OTLP/JSON: expected an object with resourceSpans.")
    _json_ids_to_base64(body)
    try:
        json_format.ParseDict(body, message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, RecursionError) as exc:
        raise exceptions.ParseError(f"Malformed OTLP/JSON: {exc}.") from exc
    return message, media


def _when(span) -> datetime | None:
    nanos = span.end_time_unix_nano or span.start_time_unix_nano
    if not nanos:
        return None
    try:
        return datetime.fromtimestamp(nanos // 1_000_000_000, tz=UTC).replace(microsecond=(nanos // 1000) % 1_000_000)
    except (OverflowError, OSError, ValueError):
        return None  # the service refuses the entry for its occurred_at


def spans_to_entries(message: ExportTraceServiceRequest, bound_instance_id) -> tuple[list, dict[int, dict]]:
    """(entries as the usage API takes them, {position: refusal} for GenAI spans that cannot become one).
    Spans without GenAI token usage are skipped."""
    entries: list = []
    refused: dict[int, dict] = {}
    for resource_spans in message.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attrs = _attributes(span.attributes)
                tokens_in = attrs.get("gen_ai.usage.input_tokens")
                tokens_out = attrs.get("gen_ai.usage.output_tokens")
                if tokens_in is None and tokens_out is None:
                    continue
                key = f"otlp:{span.trace_id.hex()}:{span.span_id.hex()}"
                instance = attrs.get("arm.instance.id") or resource.get("arm.instance.id")
                if bound_instance_id is not None and not instance:
                    instance = str(bound_instance_id)
                if not instance:
                    refused[len(entries)] = {
                        "index": len(entries),
                        "idempotency_key": key,
                        "result": services.Result.REJECTED,
                        "code": services.RejectCode.INSTANCE_NOT_FOUND,
                        "message": "No ARM instance: bind the API key to an instance or set the resource "
                        "attribute arm.instance.id.",
                        "field": "instance",
                    }
                    entries.append(None)
                    continue
                provider = attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system")
                provider = PROVIDER_ALIASES.get(provider, provider) if isinstance(provider, str) else provider
                occurred = _when(span)
                entries.append(
                    {
                        "instance": instance if isinstance(instance, str) else None,
                        "occurred_at": occurred.isoformat() if occurred else None,
                        "provider": provider,
                        "model": attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model"),
                        "input_tokens": tokens_in or 0,
                        "output_tokens": tokens_out or 0,
                        "cost_usd": attrs.get("arm.cost_usd"),
                        "tool_name": attrs.get("gen_ai.tool.name") or "",
                        "decision": attrs.get("arm.decision.id") or None,
                        "idempotency_key": key,
                    }
                )
    return entries, refused


def ingest(*, tenant, message: ExportTraceServiceRequest, actor) -> tuple[int, list[str]]:
    """Ingest the GenAI spans of one export, in batches of ``MAX_ENTRIES_PER_BATCH``; (refused spans,
    messages naming why)."""
    entries, refused = spans_to_entries(message, actor.bound_instance_id)
    rejected, messages = 0, []
    size = services.MAX_ENTRIES_PER_BATCH
    for start in range(0, len(entries), size):
        chunk = entries[start : start + size]
        preset = {i - start: r for i, r in refused.items() if start <= i < start + size}
        result = services.usage_ingest(
            tenant=tenant, entries=chunk, source=UsageSource.OTLP, actor=actor, preset=preset or None
        )
        for r in result.rejections():
            rejected += 1
            if len(messages) < MAX_MESSAGES_IN_ERROR:
                span = r["idempotency_key"].removeprefix("otlp:") if r.get("idempotency_key") else "?"
                messages.append(f"span {span}: {r['code']}: {r['message']}")
    return rejected, messages


def export_response(rejected: int, messages: list[str], media: str) -> HttpResponse:
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        more = f" (and {rejected - len(messages)} more)" if rejected > len(messages) else ""
        response.partial_success.error_message = f"{rejected} span(s) refused: " + "; ".join(messages) + more
    if media == PROTOBUF:
        return HttpResponse(response.SerializeToString(), content_type=PROTOBUF)
    return HttpResponse(json_format.MessageToJson(response, indent=None), content_type=JSON)


class OtlpTracesView(APIView):
    """``POST /otlp/v1/traces``: an OTLP/HTTP trace exporter's endpoint (see the module docstring)."""

    authentication_classes = [ApiKeyAuthentication]
    schema = None  # not part of the REST API's OpenAPI document: its contract is OTLP's

    def roles_for(self, request):
        return services.USAGE_ROLES

    def post(self, request):
        message, media = decode(request._request)
        rejected, messages = ingest(tenant=request.arm_tenant, message=message, actor=request.arm_actor)
        return export_response(rejected, messages, media)


__all__ = ["OtlpTracesView", "decode", "spans_to_entries"]
