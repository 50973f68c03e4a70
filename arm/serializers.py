"""Serializer fields that accept exactly what the OpenAPI schema documents.

DRF's fields are lenient: a CharField turns 5 into "5", an IntegerField takes "5", True and 5.0, a
FloatField takes False and "1.5", a DecimalField takes numbers and " 1e3". The schema says "string",
"integer", "number" and "decimal string matching a pattern", so a client (or a fuzzer) reading it must
see what it says enforced: anything else is a 400 ``validation_error``."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from decimal import Decimal

from django.core.validators import RegexValidator
from django.db import models
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A string and nothing else, at most ``max_length`` characters as sent. The schema's ``maxLength``
    is the length of the JSON string; DRF measures after trimming whitespace, and Python's ``strip``
    also removes the control characters ``\x1c``-``\x1f``, so "0" followed by 2,000 of them was read as
    one character (found by the schemathesis run: the request then went on to a 409)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    """A UUID written as a JSON string. DRF's UUIDField also takes integers, so ``false`` or ``0`` would read
    as ``00000000-0000-0000-0000-000000000000``."""

    def to_internal_value(self, data):
        if not isinstance(data, str | uuid.UUID):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: not a boolean, a string or a float (5.0 included)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A JSON number: not a boolean or a string."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class DecimalStringField(serializers.DecimalField):
    """A non-negative decimal as a JSON string (``"12.50"``), never a JSON number (binary floats cannot
    carry money exactly). The documented pattern is the whole contract: at most ``max_digits -
    decimal_places`` integer digits, at most ``decimal_places`` decimals, no sign, exponent or spaces;
    ``max_value`` (when given) is checked after it."""

    default_error_messages = {
        "format": "A decimal string with at most {integer_digits} integer digits and {decimal_places} decimals, "
        'e.g. "12.50".',
    }

    def __init__(self, *, max_digits, decimal_places, pattern=None, **kwargs):
        kwargs.setdefault("min_value", Decimal(0))
        super().__init__(max_digits=max_digits, decimal_places=decimal_places, **kwargs)
        self.integer_digits = max_digits - decimal_places
        # ``pattern`` narrows the default one, e.g. to encode ``max_value`` too.
        self.pattern = pattern or rf"^[0-9]{{1,{self.integer_digits}}}(\.[0-9]{{1,{decimal_places}}})?$"
        self._regex = re.compile(self.pattern.replace("$", r"\Z"))

    def run_validation(self, data=serializers.empty):
        if data == "":  # DRF would read "" as null; the pattern says it is not a decimal
            self.fail("format", integer_digits=self.integer_digits, decimal_places=self.decimal_places)
        return super().run_validation(data)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not self._regex.match(data):
            self.fail("format", integer_digits=self.integer_digits, decimal_places=self.decimal_places)
        return super().to_internal_value(data)


class DecimalStringFieldExtension(OpenApiSerializerFieldExtension):
    target_class = DecimalStringField

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema = {"type": "string", "format": "decimal"}
        if direction == "request":
            schema["pattern"] = field.pattern
        return schema


UNKNOWN_FIELD = "Unknown field."
READ_ONLY_FIELD = "Read-only field: it cannot be set."


class ClosedSerializerMixin:
    """A request body is closed: a key the serializer does not write is a 400 naming it (``Unknown field.``
    or ``Read-only field``), never silently dropped, so a typo cannot change what a request means. The one
    mechanism for every API write: ``StrictSerializer`` and ``StrictModelSerializer`` carry it, and the
    schema documents every request body as ``additionalProperties: false`` (``arm.schema.postprocess``).
    ``tests/test_unknown_fields.py`` posts an unknown field to every write operation of the schema."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            extra = sorted(set(data) - writable, key=str)
            if extra:
                raise serializers.ValidationError(
                    {str(key): [READ_ONLY_FIELD if key in self.fields else UNKNOWN_FIELD] for key in extra},
                    code="unknown_field",
                )
        return super().to_internal_value(data)


class StrictSerializer(ClosedSerializerMixin, serializers.Serializer):
    """A request body serializer: closed (unknown keys are a 400)."""


class StrictModelSerializer(ClosedSerializerMixin, serializers.ModelSerializer):
    """ModelSerializer whose generated string and number fields are strict (lengths still come from the
    model's ``max_length``) and whose body is closed (unknown keys are a 400)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.SlugField: StrictCharField,
        models.IntegerField: StrictIntegerField,
        models.PositiveIntegerField: StrictIntegerField,
        models.PositiveSmallIntegerField: StrictIntegerField,
        models.SmallIntegerField: StrictIntegerField,
        models.BigIntegerField: StrictIntegerField,
        models.FloatField: StrictFloatField,
    }


class StrictCharFieldExtension(OpenApiSerializerFieldExtension):
    """DRF trims strings and refuses what is blank after trimming: document that as a pattern (at least one
    non-whitespace character), so " " is not mistaken for a valid name."""

    target_class = StrictCharField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        pattern = getattr(self.target, "pattern", None)
        if pattern:
            schema["pattern"] = pattern
        elif direction == "request" and not self.target.allow_blank and self.target.trim_whitespace:
            schema["pattern"] = r"\S"
        return schema


class PatternCharField(StrictCharField):
    """A string matching ``pattern`` (ECMA-262 as documented; checked with Python's re, where ``$`` is
    read as end of string)."""

    def __init__(self, *, pattern: str, message: str = "Does not match the expected format.", **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.pattern = pattern
        regex = re.compile(pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern)
        self.validators.append(RegexValidator(regex, message))


class UniqueListField(serializers.ListField):
    """A list documented with ``uniqueItems`` (the model refuses repeats)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len({repr(item) for item in value}) != len(value):
            raise serializers.ValidationError("Items must not repeat.", code="unique")
        return value


class UniqueListFieldExtension(OpenApiSerializerFieldExtension):
    target_class = UniqueListField

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        schema["uniqueItems"] = True
        return schema
