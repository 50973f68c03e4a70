"""The API's JSON renderer: orjson, so stored canonical JSON can be embedded verbatim.

A version's genome is returned as the exact RFC 8785 text it is stored as (and hashed over): its
serializer emits ``orjson.Fragment(<stored text>)``, which orjson writes byte for byte. Everything else
renders with the same meaning as DRF's JSONRenderer (compact, UTF-8, datetimes with ``Z``, Decimal,
lazy strings, UUIDs through DRF's encoder); orjson is also several times faster on the 1,000-row lists.
"""

from __future__ import annotations

import json

import orjson
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
_drf_encoder = JSONEncoder()


def _default(obj):
    """Types orjson leaves to us, converted as DRF's encoder does (datetimes with "Z", Decimal, lazy
    strings, querysets, generators …)."""
    return _drf_encoder.default(obj)


class ORJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None  # JSON is UTF-8 by definition (RFC 8259); as DRF's JSONRenderer

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        options = _OPTIONS
        if self._indent(accepted_media_type, renderer_context or {}):
            options |= orjson.OPT_INDENT_2
        try:
            return orjson.dumps(data, default=_default, option=options)
        except orjson.JSONEncodeError:
            # What orjson refuses and the standard library writes (integers beyond 64 bits, nesting
            # beyond 254 levels): render as DRF always did, with any embedded canonical text parsed back.
            return JSONRenderer().render(_without_fragments(data), accepted_media_type, renderer_context)

    @staticmethod
    def _indent(accepted_media_type, renderer_context) -> bool:
        if accepted_media_type:
            for param in accepted_media_type.split(";")[1:]:
                key, _, value = param.strip().partition("=")
                if key == "indent" and value.strip().isdigit():
                    return int(value) > 0
        return bool(renderer_context.get("indent"))


def _without_fragments(value):
    if isinstance(value, orjson.Fragment):
        return json.loads(orjson.dumps(value))
    if isinstance(value, dict):
        return {key: _without_fragments(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_fragments(item) for item in value]
    return value
