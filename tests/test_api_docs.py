"""The API reference integrators copy from: every operation tagged by resource, described in its own
words, no internal references; every component described for its readers, never by a serializer's docstring.
The examples are tested in tests/test_api_examples.py (they work as they are in the demo)."""

import re

import pytest
import yaml
from django.core.management import call_command

from arm.schema_docs import COMPONENTS, TAGS, component_description


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


# What maintainers write and readers of the reference should never meet.
DEVELOPER_TEXT = re.compile(r"``|[Ss]erializer|SPEC|§|max_length|queryset")


def test_every_component_has_a_description_for_its_readers(schema):
    components = schema["components"]["schemas"]
    undescribed = [n for n, c in components.items() if "enum" not in c and not c.get("description")]
    assert not undescribed, f"describe them in arm/schema_docs.py COMPONENTS: {undescribed}"
    for name, component in components.items():
        assert not DEVELOPER_TEXT.search(component.get("description", "")), (name, component["description"])
        if "enum" not in component:
            assert component["description"] == component_description(name), name


def test_no_field_is_described_in_maintainers_words(schema):
    def descriptions(node, where):
        if isinstance(node, dict):
            if isinstance(node.get("description"), str):
                yield where, node["description"]
            for key, value in node.items():
                yield from descriptions(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from descriptions(value, f"{where}[{i}]")

    found = [(w, d) for w, d in descriptions(schema, "schema") if DEVELOPER_TEXT.search(d)]
    assert not found, found


def test_every_written_component_description_is_used(schema):
    assert set(COMPONENTS) <= set(schema["components"]["schemas"]), set(COMPONENTS) - set(
        schema["components"]["schemas"]
    )
