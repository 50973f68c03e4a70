"""``instrument()``: send this process's OpenTelemetry traces to ARM (``pip install "arm-sdk[otel]"``).

ARM's receiver (``POST {ARM_URL}/otlp/v1/traces``, ARM's ``ledger/otlp.py``) turns spans carrying GenAI
token usage (``gen_ai.usage.input_tokens`` / ``gen_ai.usage.output_tokens``, as the frameworks' own
instrumentation writes them) into usage ledger entries, and reads the instance a span belongs to from the
**``arm.instance.id``** attribute of the span or of its resource (or from the key, when the key is bound
to one instance). So:

- one agent per process (``instance=`` or ``ARM_INSTANCE_ID``): the resource carries ``arm.instance.id``
  (and OpenTelemetry's own ``service.instance.id``, the same id, for other backends);
- a host of many agents: a span processor stamps ``arm.instance.id`` on each span when it starts, taken
  from ``arm_sdk.context(instance=…)`` around the agent's work, else from the span's ``gen_ai.agent.id`` or
  ``gen_ai.agent.name`` looked up in ``agents={name or id: instance id}``, else from its parent span.

ARM answers each export as a collector does; spans it refused are counted and named in the answer's
``partial_success``, and spans it stored but could not price are named there too (with ``rejected_spans``
0: OTLP's warning). The stock exporter reads neither. The exporter's HTTP session here does: it logs a
warning (logger ``arm_sdk.telemetry``) and calls ``on_refused(rejected count, message)``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping

import requests
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

from .config import Config
from .context import current_instance

logger = logging.getLogger("arm_sdk.telemetry")
INSTANCE_ATTRIBUTE = "arm.instance.id"  # what ARM's ledger/otlp.py reads (span, then resource)
AGENT_ATTRIBUTES = ("gen_ai.agent.id", "gen_ai.agent.name")
OTLP_PATH = "/otlp/v1/traces"

Refused = Callable[[int, str], None]


def partial_success(response: requests.Response) -> tuple[int, str]:
    """(spans refused, why) from an OTLP/HTTP export answer, protobuf or JSON; (0, "") when none."""
    if response.status_code != 200 or not response.content:
        return 0, ""
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json":
        try:
            body = json.loads(response.content)
        except ValueError:
            return 0, ""
        partial = (body or {}).get("partialSuccess") or (body or {}).get("partial_success") or {}
        rejected = partial.get("rejectedSpans", partial.get("rejected_spans", 0))
        message = partial.get("errorMessage", partial.get("error_message", ""))
        return int(rejected or 0), str(message or "")
    try:
        answer = ExportTraceServiceResponse.FromString(response.content)
    except Exception:  # noqa: BLE001 - an answer we cannot read is not worth failing an export for
        return 0, ""
    return answer.partial_success.rejected_spans, answer.partial_success.error_message


class ArmExportSession(requests.Session):
    """The exporter's session: every answer passes through ``partial_success`` (the exporter sends through
    ``Session.request`` in every release: older ones via ``post``)."""

    def __init__(self, on_refused: Refused | None = None) -> None:
        super().__init__()
        self.on_refused = on_refused

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        response = super().request(method, url, *args, **kwargs)
        rejected, message = partial_success(response)
        if rejected or message:
            if rejected:
                logger.warning("ARM refused %d span(s): %s", rejected, message)
            else:  # accepted whole, with a warning (ARM: spans stored unpriced, naming their models)
                logger.warning("ARM accepted the spans with a warning: %s", message)
            if self.on_refused is not None:
                self.on_refused(rejected, message)
        return response


class InstanceSpanProcessor(SpanProcessor):
    """Stamps ``arm.instance.id`` on spans as they start (see the module docstring for where it is found)."""

    def __init__(self, *, default: str | None = None, agents: Mapping[str, str] | None = None) -> None:
        self.default = default
        self.agents = dict(agents or {})

    def _instance(self, span, parent_context) -> str | None:
        found = current_instance()
        if found:
            return found
        attributes = span.attributes or {}
        for key in AGENT_ATTRIBUTES:
            agent = attributes.get(key)
            if agent is not None and str(agent) in self.agents:
                return self.agents[str(agent)]
        parent = trace.get_current_span(parent_context)
        inherited = (getattr(parent, "attributes", None) or {}).get(INSTANCE_ATTRIBUTE)
        return inherited or self.default

    def on_start(self, span, parent_context=None) -> None:
        if (span.attributes or {}).get(INSTANCE_ATTRIBUTE):
            return
        instance = self._instance(span, parent_context)
        if instance:
            span.set_attribute(INSTANCE_ATTRIBUTE, str(instance))

    def on_end(self, span) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def instrument(
    *,
    url: str | None = None,
    api_key: str | None = None,
    instance: str | None = None,
    agents: Mapping[str, str] | None = None,
    service_name: str | None = None,
    tracer_provider: TracerProvider | None = None,
    set_global: bool = True,
    batch: bool = True,
    on_refused: Refused | None = None,
    timeout: float = 10.0,
) -> TracerProvider:
    """Export traces to ARM; returns the tracer provider. One call, at start-up:

    - ``url``/``api_key``/``instance`` default to ``ARM_URL``/``ARM_API_KEY``/``ARM_INSTANCE_ID``;
    - an SDK tracer provider already set globally (or given) gets ARM's exporter added; otherwise a new
      one is made (with ``arm.instance.id`` on its resource when there is one instance) and, with
      ``set_global``, installed as the global provider;
    - ``batch=False`` exports each span as it ends (tests, short scripts)."""
    config = Config.resolve(url, api_key, instance)
    provider = tracer_provider
    if provider is None:
        current = trace.get_tracer_provider()
        provider = current if isinstance(current, TracerProvider) else None
    stamp_default = config.instance
    if provider is None:
        attributes = {"service.name": service_name or "arm-agent"}
        if config.instance:
            attributes.update({INSTANCE_ATTRIBUTE: config.instance, "service.instance.id": config.instance})
            stamp_default = None  # on the resource already
        provider = TracerProvider(resource=Resource.create(attributes))
        if set_global:
            trace.set_tracer_provider(provider)
    provider.add_span_processor(InstanceSpanProcessor(default=stamp_default, agents=agents))
    exporter = OTLPSpanExporter(
        endpoint=config.url + OTLP_PATH,
        headers={"Authorization": f"Bearer {config.api_key}"},
        timeout=timeout,
        session=ArmExportSession(on_refused),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    return provider
