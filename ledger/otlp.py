"""The OTLP/HTTP traces receiver (``POST /otlp/v1/traces``): spans that follow the OpenTelemetry GenAI
semantic conventions, or OpenInference's (what Arize Phoenix instrumentations emit), become ledger
entries through ``ledger.ingest.usage_ingest``, the one ingestion path the usage API uses too.

- Encodings: ``application/x-protobuf`` (binary ``ExportTraceServiceRequest``) and ``application/json``
  (the OTLP/JSON mapping: hex trace and span ids, lowerCamelCase keys, unknown fields ignored), each
  optionally ``Content-Encoding: gzip``. Decoded with the ``opentelemetry-proto`` messages and
  ``google.protobuf.json_format``. Anything else is 415; a body that does not decode is 400.
- Authentication: ``Authorization: Bearer <ARM API key>`` (the API's key authentication), a runtime or
  operator key. The instance: ARM's ``arm.instance.id`` on the span, else on its resource; else the
  key's bound instance; else (an unbound key) the standard ``gen_ai.agent.id`` on the span, else
  ``service.instance.id`` on the resource, each only when it holds a UUID (``INSTANCE_ATTRIBUTES``). A
  bound key reports only for its instance: a span naming another one with ``arm.instance.id`` is
  refused (``instance_not_found``, the message naming the attribute), and the standard attributes are
  not read for it, since SDKs fill them with ids of their own (the Python SDK sets a random
  ``service.instance.id`` on every resource).
- A span becomes an entry when it carries one of the token counts of ``SPAN_ATTRIBUTES`` (input or
  output); other spans (HTTP, database, the agent's own spans) are ignored, not refused. Each entry
  field is read from the first attribute of its list present on the span (``SPAN_ATTRIBUTES``: the
  OpenTelemetry GenAI names, their older spellings, then OpenInference's); provider names are
  lowercased and a few older or OpenInference names mapped to the GenAI ones (``PROVIDER_ALIASES``);
  time: the span's end. Optional ARM attributes: ``arm.cost_usd`` (what the call cost, when the runtime
  knows) and ``arm.decision.id``. The idempotency key is ``otlp:<trace_id>:<span_id>``, so an exporter's
  retry never counts a span twice.
- Limits, so one export never holds a worker: the body is at most ``ARM_MAX_BODY_BYTES`` as sent and
  ``ARM_OTLP_MAX_DECOMPRESSED_BYTES`` once gunzipped (inflated with a bound, never whole: larger is 413
  ``payload_too_large``; a truncated gzip stream is 400, not a silently shorter export), and at most
  ``MAX_USAGE_SPANS_PER_EXPORT`` (1,000, one ingestion batch) spans with GenAI token usage become entries.
  Usage spans past that number, in the order sent, are refused in ``partial_success`` with the code
  ``too_many_spans`` (OTLP's answer for a request accepted in part; the exporter logs it and does not
  retry); the first 1,000 are ingested. An SDK's batch processor exports 512 spans at most by default;
  a collector in front of ARM needs ``send_batch_max_size`` of 1,000 or less. Spans without usage cost
  only their decoding and are not counted.
- The answer is what a collector answers: 200 with an ``ExportTraceServiceResponse`` in the request's
  encoding, whose ``partial_success`` counts the refused spans and names why (first few), so exporters
  log it and do not retry: spans refused for their content, usage spans over the limit, and spans whose
  idempotency key (``otlp:<trace>:<span>``) the instance already has with other content
  (``idempotency_conflict``). Spans stored *unpriced* (no cost sent, no price for their model) are not
  refused, but said in the same message ("N span(s) unpriced: model X"), with ``rejected_spans`` 0 when
  nothing was refused: OTLP's way to warn an exporter of a request it accepted whole. Errors before
  decoding answer ARM's JSON error body.
"""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from dataclasses import dataclass, field
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

from ledger import ingest as ledger_ingest
from ledger.choices import UsageSource
from tenancy.authentication import ApiKeyAuthentication

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# Where each entry field is read from: the first of its attributes present on the span. OpenTelemetry
# GenAI names first, then their older spellings, then OpenInference's. Token counts follow the GenAI
# convention: input tokens count every input token, the cached ones (cache reads) included.
SPAN_ATTRIBUTES = {
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion"),
    "cached_input_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
        "llm.token_count.prompt_details.cache_read",
    ),
    "provider": ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"),
    "model": (
        "gen_ai.response.model",
        "gen_ai.request.model",
        "llm.response.model_name",
        "llm.model_name",
        "llm.request.model_name",
    ),
    "tool_name": ("gen_ai.tool.name",),
    "cost_usd": ("arm.cost_usd",),
    "decision": ("arm.decision.id",),
}
# Provider names (lowercased) spelled otherwise than gen_ai.provider.name spells them: older
# gen_ai.system values (semconv 1.37) and OpenInference's llm.provider / llm.system values.
PROVIDER_ALIASES = {
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "az.ai.openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "google": "gcp.gemini",
    "vertexai": "gcp.vertex_ai",
    "azure": "azure.ai.openai",
    "aws": "aws.bedrock",
    "mistralai": "mistral_ai",
    "xai": "x_ai",
}
# Which attribute names the span's instance, in this order ("span" or "resource", name). ARM's own come
# before the key's bound instance; the standard ones only after it (so never for a bound key) and only
# when they hold a UUID (``STANDARD_INSTANCE_ATTRIBUTES``).
INSTANCE_ATTRIBUTES = (
    ("span", "arm.instance.id"),
    ("resource", "arm.instance.id"),
    ("span", "gen_ai.agent.id"),
    ("resource", "service.instance.id"),
)
STANDARD_INSTANCE_ATTRIBUTES = ("gen_ai.agent.id", "service.instance.id")
MAX_MESSAGES_IN_ERROR = 5
# Spans with GenAI usage one export may turn into entries: one ingestion batch, one transaction.
MAX_USAGE_SPANS_PER_EXPORT = ledger_ingest.MAX_ENTRIES_PER_BATCH
TOO_MANY_SPANS = "too_many_spans"
USAGE_KEYS = (*SPAN_ATTRIBUTES["input_tokens"], *SPAN_ATTRIBUTES["output_tokens"])
MAX_UNPRICED_MODELS_IN_MESSAGE = 5
JSON_SCALARS = ("stringValue", "boolValue", "intValue", "doubleValue", "bytesValue")  # not array/kvlist


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


def _json_ids_to_base64(span: dict) -> None:
    """OTLP/JSON writes trace and span ids as hex; the protobuf JSON mapping reads bytes as base64."""
    for key in ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"):
        if key in span:
            span[key] = _hex_to_base64(span[key])
    links = span.get("links")
    for link in links if isinstance(links, list) else ():
        if isinstance(link, dict):
            for key in ("traceId", "spanId", "trace_id", "span_id"):
                if key in link:
                    link[key] = _hex_to_base64(link[key])


def _json_list(obj, camel: str, snake: str) -> list:
    """The lists an OTLP/JSON object holds under a field, by its JSON name and by its proto name (the
    protobuf JSON parser reads both); anything else is left for the parser to refuse."""
    if not isinstance(obj, dict):
        return []
    return [value for value in (obj.get(camel), obj.get(snake)) if isinstance(value, list)]


def _json_has_usage(span: dict) -> bool:
    """Whether ``spans_to_entries`` will read this OTLP/JSON span as GenAI usage: a usage attribute
    holding a scalar (the last of a repeated key wins, as in ``_attributes``)."""
    attributes = span.get("attributes")
    found: dict[str, bool] = {}
    for kv in attributes if isinstance(attributes, list) else ():
        if isinstance(kv, dict) and kv.get("key") in USAGE_KEYS:
            value = kv.get("value")
            found[kv["key"]] = isinstance(value, dict) and any(value.get(k) is not None for k in JSON_SCALARS)
    return any(found.values())


def _json_prepare(body: dict) -> int:
    """Shape an OTLP/JSON body for the protobuf parser in one walk, and keep its work bounded: spans
    without GenAI usage are dropped (ARM ignores them, and the parser's walk is most of an export's
    cost), usage spans past ``MAX_USAGE_SPANS_PER_EXPORT`` are dropped and counted (the count is
    returned), and the kept spans' ids go from hex to base64. What is not a span object stays, for the
    parser to refuse."""
    kept, over = 0, 0
    for resources in _json_list(body, "resourceSpans", "resource_spans"):
        for resource_spans in resources:
            for scopes in _json_list(resource_spans, "scopeSpans", "scope_spans"):
                for scope_spans in scopes:
                    if not isinstance(scope_spans, dict) or not isinstance(scope_spans.get("spans"), list):
                        continue
                    spans = []
                    for span in scope_spans["spans"]:
                        if not isinstance(span, dict):
                            spans.append(span)
                        elif not _json_has_usage(span):
                            continue
                        elif kept >= MAX_USAGE_SPANS_PER_EXPORT:
                            over += 1
                        else:
                            kept += 1
                            _json_ids_to_base64(span)
                            spans.append(span)
                    scope_spans["spans"] = spans
    return over


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
    return _gunzip(raw, settings.ARM_OTLP_MAX_DECOMPRESSED_BYTES)


def _gunzip(raw: bytes, limit: int) -> bytes:
    """``raw`` inflated, never past ``limit`` bytes (413 beyond: a small body cannot expand without
    bound). Every gzip member is read (RFC 1952 allows several); a stream cut short is 400."""
    out = bytearray()
    rest = raw
    while rest:
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            # max_length stays >= 1 (0 would mean no limit): out holds at most ``limit`` bytes here
            out += decompressor.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise exceptions.ParseError(f"Malformed gzip body: {exc}.") from exc
        if len(out) > limit or decompressor.unconsumed_tail:
            from arm.api import PayloadTooLarge

            raise PayloadTooLarge(f"The decompressed body exceeds {limit} bytes.")
        if not decompressor.eof:
            raise exceptions.ParseError("Malformed gzip body: the stream ends before its end marker.")
        rest = decompressor.unused_data
    return bytes(out)


def decode(request) -> tuple[ExportTraceServiceRequest, str, int]:
    """(the export, its media type, usage spans past the limit already dropped from an OTLP/JSON body)."""
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
        return message, media, 0
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise exceptions.ParseError(f"Malformed OTLP/JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise exceptions.ParseError("Malformed OTLP/JSON: expected an object with resourceSpans.")
    over_limit = _json_prepare(body)
    try:
        json_format.ParseDict(body, message, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, RecursionError) as exc:
        raise exceptions.ParseError(f"Malformed OTLP/JSON: {exc}.") from exc
    return message, media, over_limit


def _when(span) -> datetime | None:
    nanos = span.end_time_unix_nano or span.start_time_unix_nano
    if not nanos:
        return None
    try:
        return datetime.fromtimestamp(nanos // 1_000_000_000, tz=UTC).replace(microsecond=(nanos // 1000) % 1_000_000)
    except (OverflowError, OSError, ValueError):
        return None  # the service refuses the entry for its occurred_at


@dataclass
class Spans:
    """What an export's spans become: ``entries`` as the usage API takes them (``None`` where ``refused``
    holds the result of a GenAI span that cannot become one, by position), ``named_by``: the attribute
    that named each entry's instance (None: the key's instance), and ``over_limit``, the usage spans past
    ``MAX_USAGE_SPANS_PER_EXPORT``, counted but not read."""

    entries: list = field(default_factory=list)
    refused: dict[int, dict] = field(default_factory=dict)
    named_by: list = field(default_factory=list)
    over_limit: int = 0


def _first(attrs: dict, field_name: str):
    """The value of the first of ``SPAN_ATTRIBUTES[field_name]`` present on the span, else None."""
    for key in SPAN_ATTRIBUTES[field_name]:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def _instance(attrs: dict, resource: dict, bound_instance_id) -> tuple[object, str | None]:
    """(the span's instance, the attribute naming it: None for the key's instance) by
    ``INSTANCE_ATTRIBUTES``; (None, None) when nothing names one."""
    for where, key in INSTANCE_ATTRIBUTES:
        if key in STANDARD_INSTANCE_ATTRIBUTES:
            if bound_instance_id is not None:
                return str(bound_instance_id), None
        value = (attrs if where == "span" else resource).get(key)
        if value is None or value == "":
            continue
        if key in STANDARD_INSTANCE_ATTRIBUTES and not _is_uuid(value):
            continue  # another tool's id for the agent or process, not an ARM instance
        return value, key
    return (None, None) if bound_instance_id is None else (str(bound_instance_id), None)


def _provider(value):
    if not isinstance(value, str):
        return value  # the service refuses it, naming the field
    value = value.lower()
    return PROVIDER_ALIASES.get(value, value)


def spans_to_entries(message: ExportTraceServiceRequest, bound_instance_id, over_limit: int = 0) -> Spans:
    """The export's GenAI usage spans as entries, the first ``MAX_USAGE_SPANS_PER_EXPORT`` of them in the
    order sent (``over_limit``: those the decoder already dropped past it); spans without token usage
    are skipped."""
    out = Spans(over_limit=over_limit)
    entries, refused = out.entries, out.refused
    for resource_spans in message.resource_spans:
        resource = None
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attrs = _attributes(span.attributes)
                tokens_in, tokens_out = _first(attrs, "input_tokens"), _first(attrs, "output_tokens")
                if tokens_in is None and tokens_out is None:
                    continue
                if len(entries) >= MAX_USAGE_SPANS_PER_EXPORT:
                    out.over_limit += 1
                    continue
                if resource is None:
                    resource = _attributes(resource_spans.resource.attributes)
                key = f"otlp:{span.trace_id.hex()}:{span.span_id.hex()}"
                instance, named_by = _instance(attrs, resource, bound_instance_id)
                out.named_by.append(named_by)
                if instance is None:
                    refused[len(entries)] = {
                        "index": len(entries),
                        "idempotency_key": key,
                        "result": ledger_ingest.Result.REJECTED,
                        "code": ledger_ingest.RejectCode.INSTANCE_NOT_FOUND,
                        "message": "No ARM instance: bind the API key to an instance or set the resource "
                        "attribute arm.instance.id (or service.instance.id to the instance's id).",
                        "field": "instance",
                    }
                    entries.append(None)
                    continue
                occurred = _when(span)
                entries.append(
                    {
                        "instance": instance if isinstance(instance, str) else None,
                        "occurred_at": occurred.isoformat() if occurred else None,
                        "provider": _provider(_first(attrs, "provider")),
                        "model": _first(attrs, "model"),
                        "input_tokens": tokens_in or 0,
                        "cached_input_tokens": _first(attrs, "cached_input_tokens") or 0,
                        "output_tokens": tokens_out or 0,
                        "cost_usd": _first(attrs, "cost_usd"),
                        "tool_name": _first(attrs, "tool_name") or "",
                        "decision": _first(attrs, "decision"),
                        "idempotency_key": key,
                    }
                )
    return out


def _unpriced_message(result: ledger_ingest.IngestResult) -> str:
    models = result.unpriced_list()
    named = ", ".join(f"{m['provider']}/{m['model']} ({m['entries']})" for m in models[:MAX_UNPRICED_MODELS_IN_MESSAGE])
    more = len(models) - MAX_UNPRICED_MODELS_IN_MESSAGE
    return (
        f"{result.unpriced} span(s) unpriced: model {named}{f' and {more} more' if more > 0 else ''}: stored at "
        "0 USD until the tenant adds a price for the model (Cost page), which prices them"
    )


def ingest(*, tenant, message: ExportTraceServiceRequest, actor, over_limit: int = 0) -> tuple[int, str]:
    """Ingest the GenAI usage spans of one export (one ``usage_ingest`` batch, at most
    ``MAX_USAGE_SPANS_PER_EXPORT``); (spans refused, the message naming why: the first few reasons, and
    the spans stored unpriced, by model)."""
    spans = spans_to_entries(message, actor.bound_instance_id, over_limit)
    refusals: list[dict] = []
    result = None
    if spans.entries:
        result = ledger_ingest.usage_ingest(
            tenant=tenant, entries=spans.entries, source=UsageSource.OTLP, actor=actor, preset=spans.refused or None
        )
        refusals = result.refusals()
    rejected = len(refusals) + spans.over_limit
    parts = []
    if rejected:
        reasons = []
        if spans.over_limit:
            reasons.append(
                f"{TOO_MANY_SPANS}: {spans.over_limit} GenAI usage span(s) after the first "
                f"{MAX_USAGE_SPANS_PER_EXPORT} of this export (at most {MAX_USAGE_SPANS_PER_EXPORT} per export: "
                "export smaller batches, e.g. the collector's send_batch_max_size)"
            )
        for r in refusals[:MAX_MESSAGES_IN_ERROR]:
            span = r["idempotency_key"].removeprefix("otlp:") if r.get("idempotency_key") else "?"
            reason = f"span {span}: {r['code']}: {r['message']}"
            named_by = spans.named_by[r["index"]] if r["index"] < len(spans.named_by) else None
            if r["code"] == ledger_ingest.RejectCode.INSTANCE_NOT_FOUND and named_by:
                reason += f" (named by the attribute {named_by})"
            reasons.append(reason)
        more = len(refusals) - MAX_MESSAGES_IN_ERROR
        parts.append(f"{rejected} span(s) refused: " + "; ".join(reasons) + (f" (and {more} more)" if more > 0 else ""))
    if result is not None and result.unpriced:
        parts.append(_unpriced_message(result))
    return rejected, "; ".join(parts)


def export_response(rejected: int, error_message: str, media: str) -> HttpResponse:
    """The export's answer; ``partial_success`` set when spans were refused or a warning is due (then
    with ``rejected_spans`` 0, as OTLP has servers warn of a request accepted whole)."""
    response = ExportTraceServiceResponse()
    if rejected or error_message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = error_message
    if media == PROTOBUF:
        return HttpResponse(response.SerializeToString(), content_type=PROTOBUF)
    return HttpResponse(json_format.MessageToJson(response, indent=None), content_type=JSON)


class OtlpTracesView(APIView):
    """``POST /otlp/v1/traces``: an OTLP/HTTP trace exporter's endpoint (see the module docstring). One
    export is at most one ingestion batch: its first ``MAX_USAGE_SPANS_PER_EXPORT`` GenAI usage spans
    become entries, any more are refused in ``partial_success`` (``too_many_spans``); a body over the size
    limits, as sent or inflated, is 413 and nothing is stored."""

    authentication_classes = [ApiKeyAuthentication]
    schema = None  # not part of the REST API's OpenAPI document: its contract is OTLP's

    def roles_for(self, request):
        return ledger_ingest.USAGE_ROLES

    def post(self, request):
        message, media, over_limit = decode(request._request)
        rejected, error_message = ingest(
            tenant=request.arm_tenant, message=message, actor=request.arm_actor, over_limit=over_limit
        )
        return export_response(rejected, error_message, media)


__all__ = ["MAX_USAGE_SPANS_PER_EXPORT", "OtlpTracesView", "Spans", "decode", "spans_to_entries"]
