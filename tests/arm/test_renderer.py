"""The orjson renderer writes what DRF's JSONRenderer wrote (same meaning) and embeds canonical text
fragments verbatim."""

import datetime
import decimal
import json
import uuid

import orjson
from django.utils.functional import lazy
from rest_framework.renderers import JSONRenderer

from arm.renderers import ORJSONRenderer

VALUE = {
    "when": datetime.datetime(2025, 1, 2, 3, 4, 5, 6000, tzinfo=datetime.UTC),
    "day": datetime.date(2025, 1, 2),
    "amount": decimal.Decimal("12.5000"),
    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "lazy": lazy(lambda: "lazy text", str)(),
    "text": 'Grüße \u2028 🚀 "q" \n',
    "numbers": [0, -0.0, 1.5, 1e-7, 2**53 - 1, None, True],
    "nested": {"a": (1, 2)},
    1: "int key",
}


def test_same_meaning_as_drf_json_renderer():
    ours = json.loads(ORJSONRenderer().render(VALUE))
    drf = json.loads(JSONRenderer().render(VALUE))
    assert ours == drf
    assert ours["when"] == "2025-01-02T03:04:05.006000Z"


def test_fragments_are_embedded_verbatim():
    text = '{"b":1,"a":[1e-7,0]}'
    assert ORJSONRenderer().render({"genome": orjson.Fragment(text)}) == b'{"genome":' + text.encode() + b"}"


def test_values_orjson_refuses_fall_back_to_the_standard_library():
    rendered = ORJSONRenderer().render({"big": 10**30, "genome": orjson.Fragment('{"a":1}')})
    assert json.loads(rendered) == {"big": 10**30, "genome": {"a": 1}}


def test_none_renders_empty():
    assert ORJSONRenderer().render(None) == b""
