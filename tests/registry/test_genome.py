"""Genome validation (each rule of SPEC §3, 400 naming the JSON path) and the genome hash: lowercase hex
SHA-256 of the RFC 8785 canonical UTF-8 bytes, checked against bytes written out by hand."""

import copy
import hashlib

import pytest
import rfc8785
from django.db import connection

from audit.choices import EventType
from registry.models import AgentVersion
from tests.factories import TemplateFactory, make_genome
from tests.helpers import assert_error, db_id, record_count, records

pytestmark = pytest.mark.django_db

LIMIT = 256 * 1024


@pytest.fixture
def template(tenant):
    return TemplateFactory(tenant=tenant)


def create(member, template, genome, label="1.0.0"):
    return member.client.post(
        "/api/v1/versions/",
        {"template": str(template.pk), "version_label": label, "genome": genome},
        format="json",
    )


def mutate(**changes):
    """make_genome() with dotted paths set (value ``...`` deletes the key)."""
    genome = copy.deepcopy(make_genome())
    for path, value in changes.items():
        node, *_, last = [genome, *path.split("__")]
        keys = path.split("__")
        node = genome
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = value
        elif value is ...:
            node.pop(last, None)
        else:
            node[last] = value
    return genome


INVALID = [
    pytest.param(mutate(model_config=...), "model_config is required and must be an object.", id="no-model-config"),
    pytest.param(mutate(model_config="gpt"), "model_config is required and must be an object.", id="model-config-str"),
    pytest.param(
        mutate(model_config__provider=...),
        "model_config.provider is required and must be a non-empty string.",
        id="no-provider",
    ),
    pytest.param(
        mutate(model_config__provider="  "),
        "model_config.provider is required and must be a non-empty string.",
        id="blank-provider",
    ),
    pytest.param(
        mutate(model_config__name=7), "model_config.name is required and must be a non-empty string.", id="name-int"
    ),
    pytest.param(
        mutate(model_config__name=...), "model_config.name is required and must be a non-empty string.", id="no-name"
    ),
    pytest.param(
        mutate(model_config__parameters=[1]), "model_config.parameters must be an object.", id="parameters-list"
    ),
    pytest.param(
        mutate(prompt_bundle_hash=...),
        "prompt_bundle_hash is required: 'sha256:' followed by 64 lowercase hex characters.",
        id="no-prompt-hash",
    ),
    pytest.param(
        mutate(prompt_bundle_hash="sha256:" + "AB" * 32),
        "prompt_bundle_hash is required: 'sha256:' followed by 64 lowercase hex characters.",
        id="prompt-hash-uppercase",
    ),
    pytest.param(
        mutate(prompt_bundle_hash="sha256:" + "a" * 63),
        "prompt_bundle_hash is required: 'sha256:' followed by 64 lowercase hex characters.",
        id="prompt-hash-short",
    ),
    pytest.param(
        mutate(prompt_bundle_hash="md5:" + "a" * 64),
        "prompt_bundle_hash is required: 'sha256:' followed by 64 lowercase hex characters.",
        id="prompt-hash-prefix",
    ),
    pytest.param(
        mutate(prompt_bundle_hash="sha256:" + "a" * 64 + "\n"),
        "prompt_bundle_hash is required: 'sha256:' followed by 64 lowercase hex characters.",
        id="prompt-hash-trailing-newline",
    ),
    pytest.param(
        mutate(tool_manifest=...),
        "tool_manifest is required and must be a list (it may be empty).",
        id="no-tool-manifest",
    ),
    pytest.param(
        mutate(tool_manifest={"name": "x"}),
        "tool_manifest is required and must be a list (it may be empty).",
        id="tool-manifest-object",
    ),
    pytest.param(mutate(tool_manifest=["crm.lookup"]), "tool_manifest[0] must be an object.", id="tool-str"),
    pytest.param(
        mutate(tool_manifest=[{"risk": "low"}]),
        "tool_manifest[0].name is required and must be a non-empty string.",
        id="tool-no-name",
    ),
    pytest.param(
        mutate(tool_manifest=[{"name": "a"}, {"name": "b"}, {"name": "a"}]),
        "tool_manifest[2].name 'a' is declared twice; tool names must be unique.",
        id="tool-duplicate",
    ),
    pytest.param(
        mutate(tool_manifest=[{"name": "a", "risk": "extreme"}]),
        "tool_manifest[0].risk must be one of low, medium, high, critical.",
        id="tool-risk",
    ),
    pytest.param(
        mutate(tool_manifest=[{"name": "a"}, {"name": "b", "risk": "HIGH"}]),
        "tool_manifest[1].risk must be one of low, medium, high, critical.",
        id="tool-risk-case",
    ),
    pytest.param(
        mutate(tool_manifest=[{"name": "a", "version": 1.2}]),
        "tool_manifest[0].version must be a string.",
        id="tool-version-number",
    ),
    pytest.param(
        mutate(tool_manifest=[{"name": "a", "data_scopes": "crm:read"}]),
        "tool_manifest[0].data_scopes must be a list of non-empty strings.",
        id="tool-scopes-str",
    ),
    pytest.param(
        mutate(tool_manifest=[{"name": "a", "data_scopes": ["crm:read", ""]}]),
        "tool_manifest[0].data_scopes must be a list of non-empty strings.",
        id="tool-scopes-empty",
    ),
    pytest.param(mutate(provenance="ci"), "provenance must be an object.", id="provenance-str"),
    pytest.param(
        mutate(modle_config={"provider": "x", "name": "y"}),
        "Unknown top-level key(s): modle_config. Allowed: model_config, prompt_bundle_hash, provenance, tool_manifest.",
        id="unknown-top-level-key",
    ),
]


@pytest.mark.parametrize(("genome", "message"), INVALID)
def test_invalid_genome_is_400_naming_the_path(operator, template, genome, message):
    before = record_count()

    response = create(operator, template, genome)

    data = assert_error(response, 400, "validation_error")
    assert message in data["errors"]["genome"], data
    assert data["message"].startswith("Invalid input: genome: "), data
    assert not AgentVersion.objects.exists()
    assert record_count() == before


@pytest.mark.parametrize("genome", [[], "genome", 42, None, True], ids=["list", "string", "number", "null", "bool"])
def test_genome_must_be_an_object(operator, template, genome):
    response = create(operator, template, genome)
    data = assert_error(response, 400, "validation_error")
    assert "genome" in data["errors"], data
    assert not AgentVersion.objects.exists()


def test_every_problem_is_reported_at_once(operator, template):
    genome = mutate(model_config__name="", prompt_bundle_hash="nope", extra=1)
    data = assert_error(create(operator, template, genome), 400, "validation_error")
    assert len(data["errors"]["genome"]) == 3, data


def test_integer_outside_the_exact_json_range_is_refused(operator, template):
    genome = mutate(model_config__parameters={"seed": 2**60})
    # refused as the body is parsed (I-JSON), before RFC 8785 would fail on it
    assert_error(create(operator, template, genome), 400, "parse_error", contains=["integers must be within"])
    assert not AgentVersion.objects.exists()


def test_non_finite_number_is_refused(operator, template):
    response = operator.client.post(
        "/api/v1/versions/",
        data=(
            '{"template": "TPL", "version_label": "1.0.0", "genome": {"model_config": {"provider": "o", "name": "m",'
            ' "parameters": {"t": NaN}}, "prompt_bundle_hash": "sha256:HEX", "tool_manifest": []}}'
        )
        .replace("TPL", str(template.pk))
        .replace("HEX", "ab" * 32),
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("parse_error", "validation_error")
    assert not AgentVersion.objects.exists()


def test_empty_tool_manifest_and_no_provenance_are_valid(operator, template):
    genome = mutate(tool_manifest=[])
    response = create(operator, template, genome)
    assert response.status_code == 201, response.json()
    assert response.json()["genome"] == genome


def test_defaults_are_not_written_into_the_genome(operator, template):
    genome = mutate(tool_manifest=[{"name": "crm.lookup"}])
    response = create(operator, template, genome)
    assert response.status_code == 201, response.json()
    assert response.json()["genome"]["tool_manifest"] == [{"name": "crm.lookup"}]
    assert response.json()["genome_hash"] == hashlib.sha256(rfc8785.dumps(genome)).hexdigest()


def padded(total_canonical_bytes: int) -> dict:
    genome = mutate(provenance={"pad": ""})
    base = len(rfc8785.dumps(genome))
    genome["provenance"]["pad"] = "x" * (total_canonical_bytes - base)
    assert len(rfc8785.dumps(genome)) == total_canonical_bytes
    return genome


def test_genome_of_exactly_256_kib_canonical_is_accepted(operator, template):
    response = create(operator, template, padded(LIMIT))
    assert response.status_code == 201, response.json()


def test_genome_over_256_kib_canonical_is_refused(operator, template):
    response = create(operator, template, padded(LIMIT + 1))
    assert_error(
        response,
        400,
        "validation_error",
        contains=[f"The genome is {LIMIT + 1} bytes canonical; the limit is {LIMIT}."],
    )
    assert not AgentVersion.objects.exists()


# ---------------------------------------------------------------- the hash

# Unicode in keys and values, floats in every ES6 formatting corner, nested objects and arrays, and keys
# whose UTF-16 order differs from their code point order ("😀" sorts before "ﬁ" in UTF-16).
HASH_GENOME = {
    "tool_manifest": [
        {"risk": "low", "name": "crm.lookup", "data_scopes": ["crm:read"]},
        {"version": "2.0", "name": "émail.send"},
    ],
    "provenance": {
        "source": "git+https://example.com/agents.git",
        "note": "Grüße, 世界 🚀",
        "quote": 'line\nbreak\t"q" \u0001 /',
        "labels": {"ﬁ": 1, "😀": 2, "z": 3, "é": 4, "a": 5},
        "nested": {"z": 1, "a": {"y": [3, 2, 1], "c": True, "b": None}},
        "built_by": "ci",
    },
    "prompt_bundle_hash": "sha256:" + "0123456789abcdef" * 4,
    "model_config": {
        "provider": "openai",
        "name": "gpt-4.1",
        "parameters": {
            "temperature": 0.2,
            "top_p": 1.0,
            "max_tokens": 1e3,
            "penalty": -0.0,
            "tiny": 1e-7,
            "big": 9007199254740991.0,
            "ratio": 0.1 + 0.2,
            "neg": -1.5e-9,
        },
    },
}

# Written out by hand: keys sorted by UTF-16 code units, no whitespace, ES6 number form (1.0 → 1,
# 1e3 → 1000, -0.0 → 0, 1e-7 → 1e-7, 9007199254740991.0 → 9007199254740991; nothing larger is accepted),
# non-ASCII as UTF-8,
# only the JSON-mandatory escapes (\n, \t, \", \u0001; "/" stays).
EXPECTED_CANONICAL = (
    '{"model_config":{"name":"gpt-4.1","parameters":{"big":9007199254740991,'
    '"max_tokens":1000,"neg":-1.5e-9,"penalty":0,"ratio":0.30000000000000004,"temperature":0.2,"tiny":1e-7,'
    '"top_p":1},"provider":"openai"},'
    '"prompt_bundle_hash":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",'
    '"provenance":{"built_by":"ci","labels":{"a":5,"z":3,"é":4,"😀":2,"ﬁ":1},'
    '"nested":{"a":{"b":null,"c":true,"y":[3,2,1]},"z":1},"note":"Grüße, 世界 🚀",'
    r'"quote":"line\nbreak\t\"q\" \u0001 /",'
    '"source":"git+https://example.com/agents.git"},'
    '"tool_manifest":[{"data_scopes":["crm:read"],"name":"crm.lookup","risk":"low"},'
    '{"name":"émail.send","version":"2.0"}]}'
).encode()
EXPECTED_HASH = hashlib.sha256(EXPECTED_CANONICAL).hexdigest()


def test_hand_written_canonical_form_agrees_with_an_rfc8785_library():
    # guards the test itself: the hand-written bytes are what any RFC 8785 implementation produces
    assert rfc8785.dumps(HASH_GENOME) == EXPECTED_CANONICAL


def test_genome_hash_is_sha256_of_the_rfc8785_bytes(operator, template):
    response = create(operator, template, HASH_GENOME)

    assert response.status_code == 201, response.json()
    assert response.json()["genome_hash"] == EXPECTED_HASH
    version = AgentVersion.objects.get(pk=response.json()["id"])
    assert version.genome_hash == EXPECTED_HASH
    (record,) = records(version, EventType.VERSION_CREATED)
    assert record.payload["after"]["genome_hash"] == EXPECTED_HASH
    assert record.payload["values_withheld"] == ["genome"]  # named, never shown


def test_genome_is_stored_as_its_canonical_bytes(operator, template):
    response = create(operator, template, HASH_GENOME)
    version = AgentVersion.objects.get(pk=response.json()["id"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT genome FROM registry_agentversion WHERE id = %s", [db_id(version)])
        (stored,) = cursor.fetchone()
    assert stored.encode("utf-8") == EXPECTED_CANONICAL


@pytest.mark.parametrize("endpoint", ["create", "detail", "list"])
def test_hash_recomputes_from_the_api_response(operator, template, endpoint):
    created = create(operator, template, HASH_GENOME)
    assert created.status_code == 201, created.json()
    if endpoint == "create":
        data = created.json()
    elif endpoint == "detail":
        data = operator.client.get(f"/api/v1/versions/{created.json()['id']}/").json()
    else:
        (data,) = operator.client.get("/api/v1/versions/").json()["results"]

    recomputed = hashlib.sha256(rfc8785.dumps(data["genome"])).hexdigest()

    assert recomputed == data["genome_hash"] == EXPECTED_HASH


def test_key_order_and_whitespace_of_the_request_do_not_change_the_hash(operator, template):
    body = (
        (
            '{ "template" : "TPL", "version_label": "2.0.0",\n "genome": {"tool_manifest": [], '
            '"prompt_bundle_hash": "sha256:HEX",  "model_config": {"name": "m", "provider": "p"}}}'
        )
        .replace("TPL", str(template.pk))
        .replace("HEX", "cd" * 32)
    )
    response = operator.client.post("/api/v1/versions/", data=body, content_type="application/json")
    assert response.status_code == 201, response.json()
    expected = '{"model_config":{"name":"m","provider":"p"},"prompt_bundle_hash":"sha256:HEX","tool_manifest":[]}'
    expected = expected.replace("HEX", "cd" * 32)
    assert response.json()["genome_hash"] == hashlib.sha256(expected.encode()).hexdigest()
