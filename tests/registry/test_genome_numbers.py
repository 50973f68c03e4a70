"""Whatever ARM accepts in a genome it stores in a form that re-hashes to the same hash and returns byte for
byte what the hash was computed over; whatever it cannot, it refuses on the way in (400 naming the JSON
path). Numbers beyond ±(2^53-1) in any notation are integers outside I-JSON's exact range: refused."""

import hashlib
import itertools
import json

import pytest
import rfc8785
from django.core.exceptions import ValidationError
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arm.jsonutil import MAX_SAFE_INTEGER
from registry import services
from registry.genome import validate_genome
from registry.models import AgentVersion
from tests.factories import TemplateFactory, make_genome
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/versions/"


@pytest.fixture
def template(tenant):
    return TemplateFactory(tenant=tenant)


def post_text(member, template, parameters_text: str, label="1.0.0"):
    """POST a genome whose ``model_config.parameters`` is written verbatim (number notation preserved)."""
    genome = json.dumps(make_genome())
    genome = genome.replace('{"temperature": 0.2}', parameters_text)
    body = f'{{"template": "{template.pk}", "version_label": "{label}", "genome": {genome}}}'
    return member.client.post(URL, data=body, content_type="application/json")


@pytest.mark.parametrize(
    "literal",
    ["1e20", "9007199254740992.0", "1e300", "-1e20", "1E21", "9007199254740992", "-9007199254740992", "1e21"],
)
def test_numbers_beyond_the_exact_range_are_refused_naming_the_path(operator, template, literal):
    response = post_text(operator, template, f'{{"temperature": 0.2, "x": {literal}}}')

    data = assert_error(response, 400, "parse_error", contains=["genome.model_config.parameters.x:"])
    assert "9007199254740991" in data["message"], data
    assert not AgentVersion.objects.exists()


def test_the_path_names_list_indices_and_nested_keys(operator, template):
    response = post_text(operator, template, '{"a": [1, {"b": [0, 1e20]}]}')
    assert_error(response, 400, "parse_error", contains=["genome.model_config.parameters.a[1].b[1]:"])


@pytest.mark.parametrize(
    ("literal", "stored"),
    [
        ("-0.0", "0"),
        ("1.0", "1"),
        ("1e3", "1000"),
        ("9007199254740991", "9007199254740991"),
        ("-9007199254740991.0", "-9007199254740991"),
        ("1e-7", "1e-7"),
        ("5e-324", "5e-324"),
    ],
)
def test_create_returns_the_stored_form_and_detail_verifies(operator, template, literal, stored):
    created = post_text(operator, template, f'{{"x": {literal}}}')
    assert created.status_code == 201, created.json()
    version = AgentVersion.objects.get(pk=created.json()["id"])
    canonical = version.genome.canonical_text.encode()
    assert f'"parameters":{{"x":{stored}}}'.encode() in canonical
    assert hashlib.sha256(canonical).hexdigest() == version.genome_hash

    detail = operator.client.get(f"{URL}{version.pk}/")
    (listed,) = operator.client.get(URL).json()["results"]
    for response_bytes, data in ((created.content, created.json()), (detail.content, detail.json())):
        # the genome in the response is byte for byte the stored canonical text
        assert b'"genome":' + canonical + b"," in response_bytes
        assert rfc8785.dumps(data["genome"]) == canonical
    assert listed["genome"] == created.json()["genome"]
    assert detail.json()["integrity"]["status"] == "VERIFIED"


def test_version_list_returns_each_genome_verbatim(operator, template):
    for n in range(3):
        assert post_text(operator, template, f'{{"x": -0.0, "n": {n}.0}}', label=f"1.0.{n}").status_code == 201
    response = operator.client.get(URL)
    for version in AgentVersion.objects.all():
        assert b'"genome":' + version.genome.canonical_text.encode() + b"," in response.content


@pytest.mark.parametrize("value", [1e20, 9007199254740992.0, 1e300, -(2**53), 2**60])
def test_validate_genome_and_the_service_refuse_them_too(operator, template, value):
    genome = make_genome(provenance={"build": {"sizes": [1, value]}})
    with pytest.raises(ValidationError) as excinfo:
        validate_genome(genome)
    (message,) = excinfo.value.message_dict["genome"]
    assert message.startswith("genome.provenance.build.sizes[1]: numbers must be within ±9007199254740991"), message

    with pytest.raises(ValidationError) as excinfo:
        services.version_create(
            tenant=template.tenant, template=template, version_label="1.0.0", genome=genome, actor=operator.actor
        )
    assert "genome.provenance.build.sizes[1]" in str(excinfo.value.message_dict["genome"])
    assert not AgentVersion.objects.exists()


def test_verify_integrity_passes_for_every_accepted_genome(operator, template):
    for n, literal in enumerate(["-0.0", "1.0", "9007199254740991", "1e-7", "123456789.125"]):
        assert post_text(operator, template, f'{{"x": {literal}}}', label=f"1.{n}").status_code == 201
    call_command("verify_integrity")  # raises SystemExit(1) on any TAMPERED version


# ---------------------------------------------------------------- property: accepted ⇒ verifiable

EDGE_NUMBERS = [
    0,
    -0.0,
    1.0,
    0.1,
    1e-7,
    5e-324,
    -1.5e-9,
    1e15,
    4.5e15,
    MAX_SAFE_INTEGER,
    -MAX_SAFE_INTEGER,
    float(MAX_SAFE_INTEGER),
    MAX_SAFE_INTEGER + 1,
    -(MAX_SAFE_INTEGER + 1),
    9007199254740992.0,
    1e20,
    -1e20,
    1e21,
    1e300,
    1.7976931348623157e308,
]
numbers = st.one_of(
    st.sampled_from(EDGE_NUMBERS),
    st.integers(min_value=-MAX_SAFE_INTEGER - 3, max_value=MAX_SAFE_INTEGER + 3),
    st.integers(min_value=MAX_SAFE_INTEGER - 3, max_value=MAX_SAFE_INTEGER + 3),
    st.floats(allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=4)


def bad_paths(value, path: str) -> set[str]:
    """Every JSON path at which ARM must refuse something (a NUL in a key is reported at its object)."""
    found = set()
    if isinstance(value, bool) or value is None:
        return found
    if isinstance(value, int | float) and abs(value) > MAX_SAFE_INTEGER:
        found.add(path)
    elif isinstance(value, str) and "\x00" in value:
        found.add(path)
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                found.add(path)
            found |= bad_paths(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found |= bad_paths(item, f"{path}[{index}]")
    return found


labels = itertools.count()


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(parameters=json_objects, provenance=json_objects)
def test_property_accepted_genomes_verify_and_refused_ones_name_the_field(operator, template, parameters, provenance):
    genome = make_genome(provenance=provenance)
    genome["model_config"]["parameters"] = parameters
    body = json.dumps(
        {"template": str(template.pk), "version_label": f"p{next(labels)}", "genome": genome}, allow_nan=False
    )
    response = operator.client.post(URL, data=body, content_type="application/json")
    expected_bad = bad_paths(parameters, "genome.model_config.parameters") | bad_paths(provenance, "genome.provenance")

    if expected_bad:
        data = assert_error(response, 400, "parse_error")
        assert any(data["message"].startswith(f"Malformed JSON: {path}: ") for path in expected_bad), (
            data,
            expected_bad,
        )
        return
    assert response.status_code == 201, response.json()
    created = response.json()
    canonical = rfc8785.dumps(genome)
    assert rfc8785.dumps(created["genome"]) == canonical
    assert hashlib.sha256(canonical).hexdigest() == created["genome_hash"]
    assert b'"genome":' + canonical + b"," in response.content

    detail = operator.client.get(f"{URL}{created['id']}/")
    data = detail.json()
    assert data["integrity"]["status"] == "VERIFIED", data["integrity"]
    assert hashlib.sha256(rfc8785.dumps(data["genome"])).hexdigest() == data["genome_hash"] == created["genome_hash"]
    assert b'"genome":' + canonical + b"," in detail.content
