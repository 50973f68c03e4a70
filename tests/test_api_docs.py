"""The API reference integrators copy from: every operation tagged by resource, described in its own
words, no internal references, and the request examples work as they are (with your own ids)."""

import json

import pytest
import yaml
from django.core.management import call_command

from arm.schema_docs import EXAMPLE_INSTANCE_ID, EXAMPLE_TEMPLATE_ID, TAGS
from tests.factories import TemplateFactory
from tests.policies.factories import PolicyFactory, make_instance


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    call_command("spectacular", "--file", str(path))
    return yaml.safe_load(path.read_text())


def _operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_has_a_resource_tag_a_summary_and_its_own_description(schema):
    tag_names = {t["name"] for t in TAGS}
    descriptions = {}
    for name, operation in _operations(schema):
        assert len(operation["tags"]) == 1 and operation["tags"][0] in tag_names, name
        assert operation["summary"] and operation["description"], name
        text = operation["summary"] + operation["description"]
        assert "``" not in text and "SPEC" not in text and "§" not in text, name
        descriptions.setdefault(operation["description"], []).append(name)
    repeated = {d: ops for d, ops in descriptions.items() if len(ops) > 1}
    assert not repeated, repeated
    assert len({operation["tags"][0] for _, operation in _operations(schema)}) >= 10


def test_schema_names_read_as_english(schema):
    names = schema["components"]["schemas"]
    assert "EvaluateRequest" in names
    assert not [n for n in names if n.endswith("RequestRequest")]


def test_evaluate_params_are_an_object_and_costs_cannot_be_negative(schema):
    body = schema["components"]["schemas"]["EvaluateRequest"]["properties"]
    assert body["params"]["type"] == "object"
    pattern = body["estimated_cost_usd"]["pattern"]
    import re

    assert re.match(pattern, "0.02") and not re.match(pattern, "-48")


def _example(schema, path, name):
    content = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    return json.loads(json.dumps(content["examples"][name]["value"]))


@pytest.mark.django_db
def test_the_version_create_example_is_accepted(schema, operator, tenant):
    template = TemplateFactory(tenant=tenant)
    body = json.loads(
        json.dumps(_example(schema, "/api/v1/versions/", "new_build")).replace(EXAMPLE_TEMPLATE_ID, str(template.pk))
    )
    response = operator.client.post("/api/v1/versions/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["genome"] == body["genome"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["low_risk_lookup", "risky_email"])
def test_the_evaluate_examples_are_accepted(schema, operator, tenant, name):
    instance = make_instance(tenant, policy=PolicyFactory(tenant=tenant, autonomy_tier=2, data_scopes=["crm:*"]))
    body = json.loads(
        json.dumps(_example(schema, "/api/v1/policy/evaluate/", name)).replace(EXAMPLE_INSTANCE_ID, str(instance.pk))
    )
    response = operator.client.post("/api/v1/policy/evaluate/", body, format="json")
    assert response.status_code == 200, response.json()
    expected = {"low_risk_lookup": "ALLOW", "risky_email": "NEEDS_APPROVAL"}[name]
    assert response.json()["decision"] == expected, response.json()
