"""``instrument()`` against a live ARM: spans reach ``/otlp/v1/traces`` with the key, carry the instance
ARM reads (``arm.instance.id``: from ``arm_sdk.context``, the agents map, the parent span, or the
resource), become usage, and the spans ARM refuses are reported from the answer's ``partial_success``."""

from __future__ import annotations

import logging
import uuid

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import arm_sdk
from arm_sdk import Client
from arm_sdk.telemetry import INSTANCE_ATTRIBUTE, instrument


def usage_span(tracer, name="chat gpt-test", **attributes):
    with tracer.start_as_current_span(name) as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-test",
                "gen_ai.usage.input_tokens": 1200,
                "gen_ai.usage.output_tokens": 300,
                **attributes,
            }
        )
    return span


@pytest.fixture
def host_key(arm):
    """An unbound runtime key, as a host of many agents holds: ARM learns each span's instance from it."""
    with arm.admin() as admin:
        created = admin.api(
            "POST", "/api/v1/api-keys/", json={"name": f"host {uuid.uuid4().hex[:6]}", "roles": ["runtime"]}
        )
    return created["key"]


def tokens_by_instance(arm) -> dict[str, int]:
    with arm.admin() as admin:
        report = admin.api("GET", "/api/v1/costs/", params={"group_by": "instance"})
    return {group["key"]: group["input_tokens"] for group in report["groups"]}


def test_spans_of_many_agents_reach_arm_each_with_its_instance(arm, host_key):
    first, second, third = arm.agent(), arm.agent(), arm.agent()
    refused = []
    provider = instrument(
        url=arm.url,
        api_key=host_key,
        agents={"billing-bot": third.instance},
        set_global=False,
        batch=False,
        on_refused=lambda count, message: refused.append((count, message)),
    )
    tracer = provider.get_tracer("sdk-test")
    with arm_sdk.context(instance=first.instance):
        usage_span(tracer)
    with arm_sdk.context(instance=second.instance), tracer.start_as_current_span("agent run"):
        with arm_sdk.context(instance=None):
            usage_span(tracer)  # a child span: the processor stamped its parent
    with tracer.start_as_current_span("invoke_agent", attributes={"gen_ai.agent.name": "billing-bot"}):
        usage_span(tracer)  # inherits the instance the agent's name maps to
    provider.force_flush()
    provider.shutdown()
    assert [count for count, _ in refused if count] == []  # none refused (an unpriced warning may come)
    tokens = tokens_by_instance(arm)
    assert tokens.get(first.instance) == tokens.get(second.instance) == tokens.get(third.instance) == 1200


def test_spans_arm_refuses_are_logged_from_partial_success(arm, host_key, caplog):
    refused = []
    provider = instrument(
        url=arm.url, api_key=host_key, set_global=False, batch=False, on_refused=lambda *r: refused.append(r)
    )
    with caplog.at_level(logging.WARNING, logger="arm_sdk.telemetry"):
        usage_span(provider.get_tracer("sdk-test"))  # no instance anywhere: ARM cannot book it
        provider.force_flush()
    provider.shutdown()
    [(count, message)] = refused
    assert count == 1 and "instance" in message
    assert "ARM refused 1 span(s)" in caplog.text


def test_spans_arm_could_not_price_are_logged_as_a_warning(arm, agent, caplog):
    warned = []
    provider = instrument(
        url=arm.url, api_key=agent.runtime_key, set_global=False, batch=False, on_refused=lambda *w: warned.append(w)
    )
    with caplog.at_level(logging.WARNING, logger="arm_sdk.telemetry"):
        usage_span(provider.get_tracer("sdk-test"), **{"gen_ai.request.model": f"unpriced-{uuid.uuid4().hex[:6]}"})
        provider.force_flush()
    provider.shutdown()
    if not warned:
        pytest.skip("ARM does not warn about unpriced spans in partial_success")
    [(count, message)] = warned
    assert count == 0 and "unpriced" in message
    assert "ARM accepted the spans with a warning" in caplog.text


def test_one_agent_per_process_puts_the_instance_on_the_resource(arm, agent, monkeypatch):
    monkeypatch.setenv("ARM_URL", arm.url)
    monkeypatch.setenv("ARM_API_KEY", agent.runtime_key)
    monkeypatch.setenv("ARM_INSTANCE_ID", agent.instance)
    provider = instrument(set_global=False, batch=False, service_name="support-bot")
    local = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(local))
    usage_span(provider.get_tracer("sdk-test"))
    provider.force_flush()
    provider.shutdown()
    [span] = local.get_finished_spans()
    assert span.resource.attributes[INSTANCE_ATTRIBUTE] == agent.instance
    assert span.resource.attributes["service.instance.id"] == agent.instance
    assert tokens_by_instance(arm).get(agent.instance) == 1200
    with Client(arm.url, agent.runtime_key, agent.instance) as client:  # the key still works: nothing revoked
        assert client.evaluate("crm_lookup", {}).allowed
