"""OTLP intake of what real instrumentations emit (issue 24): OpenInference attributes beside the
OpenTelemetry GenAI ones, cached input tokens, providers in any case, the standard attributes that name
an instance, and unpriced spans said in partial_success, in protobuf and JSON alike."""

import uuid
from decimal import Decimal

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from rest_framework.test import APIClient

from ledger.models import UsageEntry
from tests.factories import make_api_key
from tests.ledger.factories import PriceFactory
from tests.ledger.test_otlp import export, genai, otlp_json, post

PROTOBUF, JSON = "application/x-protobuf", "application/json"


def openinference(**overrides) -> dict:
    """An LLM span as OpenInference's OpenAI instrumentation writes it (Arize Phoenix)."""
    attrs = {
        "openinference.span.kind": "LLM",
        "llm.provider": "openai",
        "llm.system": "openai",
        "llm.model_name": "gpt-4.1-2025-04-14",
        "llm.token_count.prompt": 10_000,
        "llm.token_count.completion": 500,
        "llm.token_count.total": 10_500,
        "llm.token_count.prompt_details.cache_read": 8_000,
    }
    attrs.update(overrides)
    return {k: v for k, v in attrs.items() if v is not None}


def send(client, request, encoding):
    """Post an export in ``encoding``; (status, partial_success as a dict: {} when absent)."""
    if encoding == PROTOBUF:
        response = post(client, request.SerializeToString())
        answer = ExportTraceServiceResponse.FromString(response.content)
        partial = answer.partial_success if answer.HasField("partial_success") else None
        found = {"rejected": partial.rejected_spans, "message": partial.error_message} if partial else {}
    else:
        response = post(client, otlp_json(request), JSON)
        body = response.json().get("partialSuccess")
        found = {"rejected": int(body.get("rejectedSpans", 0)), "message": body["errorMessage"]} if body else {}
    assert response.status_code == 200, response.content
    return found


@pytest.fixture
def priced(tenant):
    return PriceFactory(
        tenant=tenant,
        provider="openai",
        model="gpt-4.1",
        input_usd_per_mtok=Decimal("2"),
        cached_input_usd_per_mtok=Decimal("0.5"),
        output_usd_per_mtok=Decimal("8"),
    )


def _client(tenant, instance=None) -> APIClient:
    _, secret = make_api_key(tenant, ["runtime"], instance=instance)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.parametrize("encoding", [PROTOBUF, JSON])
def test_openinference_spans_become_entries_with_their_cached_tokens(tenant, instance, priced, encoding):
    answer = send(
        _client(tenant, instance), export([(1, openinference()), (2, {"openinference.span.kind": "CHAIN"})]), encoding
    )
    assert answer == {}
    stored = UsageEntry.objects.get()
    assert (stored.provider, stored.model) == ("openai", "gpt-4.1-2025-04-14")
    assert (stored.input_tokens, stored.cached_input_tokens, stored.output_tokens) == (10_000, 8_000, 500)
    # 2,000 × $2 + 8,000 × $0.50 + 500 × $8 per million: the cached tokens at their own price
    assert (stored.cost_usd, stored.cost_source) == (Decimal("0.012"), "priced")


@pytest.mark.parametrize(
    "cache_attribute",
    ["gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens"],
)
def test_genai_cache_reads_are_cached_input_tokens(tenant, instance, priced, cache_attribute):
    spans = [
        (1, genai(**{"gen_ai.usage.input_tokens": 10_000, "gen_ai.usage.output_tokens": 500, cache_attribute: 8_000}))
    ]
    assert send(_client(tenant, instance), export(spans), PROTOBUF) == {}
    stored = UsageEntry.objects.get()
    assert stored.cached_input_tokens == 8_000 and stored.cost_usd == Decimal("0.012")


def test_older_genai_token_names_and_a_capitalised_provider_are_understood(tenant, instance, priced):
    attrs = genai(
        **{
            "gen_ai.usage.input_tokens": None,
            "gen_ai.usage.output_tokens": None,
            "gen_ai.usage.prompt_tokens": 1000,
            "gen_ai.usage.completion_tokens": 500,
            "gen_ai.provider.name": None,
            "gen_ai.system": "OpenAI",
        }
    )
    assert send(_client(tenant, instance), export([(1, attrs)]), JSON) == {}
    stored = UsageEntry.objects.get()
    assert (stored.provider, stored.input_tokens, stored.output_tokens) == ("openai", 1000, 500)
    assert stored.cost_source == "priced"


@pytest.mark.parametrize(("llm_provider", "stored"), [("google", "gcp.gemini"), ("Azure", "azure.ai.openai")])
def test_openinference_provider_names_map_to_the_genai_ones(tenant, instance, llm_provider, stored):
    send(_client(tenant, instance), export([(1, openinference(**{"llm.provider": llm_provider}))]), PROTOBUF)
    assert UsageEntry.objects.get().provider == stored


def test_a_span_whose_cache_reads_exceed_its_input_is_refused_and_said(tenant, instance, priced):
    spans = [(1, openinference(**{"llm.token_count.prompt": 50})), (2, openinference())]
    answer = send(_client(tenant, instance), export(spans), PROTOBUF)
    assert answer["rejected"] == 1
    assert "validation_error: cached_input_tokens (8000) is more than input_tokens (50)" in answer["message"]
    assert UsageEntry.objects.count() == 1


@pytest.mark.parametrize("encoding", [PROTOBUF, JSON])
def test_unpriced_spans_are_stored_and_said_in_partial_success(tenant, instance, priced, encoding):
    spans = [
        (1, genai(**{"gen_ai.response.model": "gpt-9", "gen_ai.request.model": "gpt-9"})),
        (2, openinference(**{"llm.provider": "Acme", "llm.system": None, "llm.model_name": "rocket-1"})),
        (3, genai(**{"gen_ai.response.model": "gpt-9", "gen_ai.request.model": "gpt-9"})),
        (4, genai()),  # priced
    ]
    answer = send(_client(tenant, instance), export(spans), encoding)
    assert answer["rejected"] == 0  # accepted whole: a warning, not a refusal
    assert answer["message"].startswith(
        "3 span(s) unpriced: model acme/rocket-1 (1), openai/gpt-9 (2): stored at 0 USD"
    )
    assert UsageEntry.objects.count() == 4
    assert UsageEntry.objects.filter(cost_source="unpriced").count() == 3


def test_refusals_and_unpriced_spans_share_the_message(tenant, instance, other_instance, priced):
    spans = [
        (1, genai(**{"arm.instance.id": str(other_instance.pk)})),  # another tenant's instance
        (2, genai(**{"gen_ai.response.model": "gpt-9"})),
    ]
    answer = send(_client(tenant, instance), export(spans), PROTOBUF)
    assert answer["rejected"] == 1
    refused, unpriced = answer["message"].split("; 1 span(s) unpriced: ")
    assert "instance_not_found" in refused and "(named by the attribute arm.instance.id)" in refused
    assert unpriced.startswith("model openai/gpt-9 (1)")


# ---------------------------------------------------------------- which instance


def test_an_unbound_key_takes_the_instance_from_service_instance_id(tenant, instance, operator, priced):
    request = export([(1, genai())], resource={"service.name": "support-bot", "service.instance.id": str(instance.pk)})
    assert send(operator.client, request, PROTOBUF) == {}
    assert UsageEntry.objects.get().instance_id == instance.pk


def test_gen_ai_agent_id_names_the_instance_of_each_span(tenant, instance, operator, priced):
    from tests.factories import InstanceFactory, VersionFactory

    second = InstanceFactory(version=VersionFactory(template=instance.version.template))
    spans = [(1, genai(**{"gen_ai.agent.id": str(instance.pk)})), (2, genai(**{"gen_ai.agent.id": str(second.pk)}))]
    resource = {"service.instance.id": str(uuid.uuid4())}  # the SDK's own random id: the span's wins
    assert send(operator.client, export(spans, resource=resource), PROTOBUF) == {}
    assert sorted(UsageEntry.objects.values_list("instance_id", flat=True)) == sorted([instance.pk, second.pk])


def test_arm_instance_id_comes_before_the_standard_attributes(tenant, instance, operator, priced):
    resource = {"arm.instance.id": str(instance.pk), "service.instance.id": str(uuid.uuid4())}
    spans = [(1, genai(**{"gen_ai.agent.id": "asst_abc123"}))]  # not a UUID: another tool's id, not read
    assert send(operator.client, export(spans, resource=resource), PROTOBUF) == {}
    assert UsageEntry.objects.get().instance_id == instance.pk


def test_a_standard_id_naming_no_instance_is_refused_naming_the_attribute(tenant, operator, priced):
    request = export([(1, genai())], resource={"service.instance.id": str(uuid.uuid4())})
    answer = send(operator.client, request, PROTOBUF)
    assert answer["rejected"] == 1
    assert "instance_not_found" in answer["message"]
    assert "(named by the attribute service.instance.id)" in answer["message"]
    assert not UsageEntry.objects.exists()


def test_a_bound_key_reports_for_its_instance_whatever_the_standard_attributes_say(
    tenant, instance, other_instance, priced
):
    from tests.factories import InstanceFactory, VersionFactory

    sibling = InstanceFactory(version=VersionFactory(template=instance.version.template))
    resource = {"service.instance.id": str(sibling.pk)}
    spans = [(1, genai(**{"gen_ai.agent.id": str(sibling.pk)})), (2, genai(**{"arm.instance.id": str(sibling.pk)}))]
    answer = send(_client(tenant, instance), export(spans, resource=resource), PROTOBUF)
    # the standard ids are not read for a bound key; ARM's own attribute naming another instance is refused
    assert answer["rejected"] == 1 and "(named by the attribute arm.instance.id)" in answer["message"]
    assert list(UsageEntry.objects.values_list("instance_id", flat=True)) == [instance.pk]
