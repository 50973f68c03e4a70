"""Filter building blocks shared by the apps' filtersets: what the OpenAPI schema documents for a query
parameter is what the filter accepts. An empty value (``?state=``) means "no filter", like every other
filter (the schema says ``allowEmptyValue``).

Use these instead of django-filter's own ``UUIDFilter``, ``IsoDateTimeFilter``, ``DateFilter`` and
``OrderingFilter``: Django's form fields strip surrounding whitespace before parsing, and Python's
``str.strip`` also removes the control characters ``\x1c``-``\x1f``, so ``?provider=%1E`` was read as an
empty value, "no filter", and answered 200 with everything; and django-filter skips the empty items of
``?ordering=,,``. Here a value with surrounding whitespace is invalid (400, like any other malformed id or
date) and an ordering with an empty item is refused by name."""

import re

import django_filters
from django import forms
from django.db import NotSupportedError, connections, models
from django.db.models import Lookup, Q
from django_filters import fields
from django_filters.fields import BaseCSVField, IsoDateTimeField


class _OptionalMultipleChoiceField(fields.MultipleChoiceField):
    def clean(self, value):
        if value is not None:
            value = [item for item in value if item != ""]
        return super().clean(value)


class MultipleChoiceFilter(django_filters.MultipleChoiceFilter):
    """``?state=A&state=B`` (any of them); empty values are ignored instead of being invalid choices."""

    field_class = _OptionalMultipleChoiceField


class _StrictIntegerField(forms.IntegerField):
    digits = re.compile(r"-?[0-9]{1,18}\Z")

    def to_python(self, value):
        if value not in self.empty_values and not self.digits.match(str(value)):
            raise forms.ValidationError("Enter a whole number.", code="invalid")
        return super().to_python(value)


class IntegerFilter(django_filters.NumberFilter):
    """An integer (``5``; not ``5.0`` or ``0.5``)."""

    field_class = _StrictIntegerField


class _Unpadded:
    """A form field refusing a value with surrounding whitespace (which Django would strip, possibly to an
    empty value that means "no filter")."""

    def to_python(self, value):
        if isinstance(value, str) and value != value.strip():
            raise forms.ValidationError(
                f"{self.error_messages['invalid']} Remove the surrounding whitespace.", code="invalid"
            )
        return super().to_python(value)


class _UUIDField(_Unpadded, forms.UUIDField):
    pass


class _IsoDateTimeField(_Unpadded, IsoDateTimeField):
    pass


class _DateField(_Unpadded, forms.DateField):
    pass


class UUIDFilter(django_filters.UUIDFilter):
    """An object id (``?version=<uuid>``)."""

    field_class = _UUIDField


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 date-time (``?since=2026-11-27T12:00:00Z``)."""

    field_class = _IsoDateTimeField


class DateFilter(django_filters.DateFilter):
    """A date (``YYYY-MM-DD``)."""

    field_class = _DateField


class _OrderingCSVField(BaseCSVField):
    def clean(self, value):
        if value and "" in value:
            raise forms.ValidationError(
                "An empty ordering field: name fields separated by single commas (e.g. -created_at,name).",
                code="invalid_choice",
            )
        return super().clean(value)


class OrderingFilter(django_filters.OrderingFilter):
    """``?ordering=-created_at,name``: every comma-separated item must be one of the fields (``,,`` is
    refused rather than read as no ordering). An empty ``?ordering=`` keeps the default order."""

    base_field_class = _OrderingCSVField


# ---------------------------------------------------------------- JSON list containment


class JsonEachHasElement(Lookup):
    """SQLite: ``EXISTS (SELECT 1 FROM json_each(<column>) WHERE value = %s)``, a JSON list holding the
    string exactly (SQLite's JSONField has no ``contains``). Only ``json_array_contains`` uses it."""

    lookup_name = "arm_json_each_has"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        raise NotSupportedError("arm_json_each_has is SQLite's; use arm.filters.json_array_contains")

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"EXISTS (SELECT 1 FROM json_each({lhs}) WHERE json_each.value = %s)", (*lhs_params, self.rhs)


models.JSONField.register_lookup(JsonEachHasElement)


def json_array_contains(queryset, field: str, values) -> object:
    """Rows whose JSON list ``field`` (a path such as ``version__template__tags``) holds every one of the
    strings ``values`` as a whole element. The one filter for tags, owners and roles, choosing per vendor:

    - PostgreSQL: ``field @> '["a", "b"]'`` (Django's ``__contains`` on a JSONField), served by the GIN
      ``jsonb_path_ops`` indexes of migrations ``registry 0005`` and ``arm 0005``;
    - SQLite, which has no JSON containment: one ``EXISTS (SELECT 1 FROM json_each(field) WHERE value = ?)``
      per value (``JsonEachHasElement``), no index (SQLite serves development and tests, not a fleet).

    Either way ``"sup"`` does not match the tag ``support`` and quoting cannot be injected (the values are
    parameters), unlike the ``icontains`` on the JSON text used before."""
    values = [value for value in dict.fromkeys(values) if value]
    if not values:
        return queryset
    if connections[queryset.db].vendor == "sqlite":
        return queryset.filter(*[Q(**{f"{field}__{JsonEachHasElement.lookup_name}": value}) for value in values])
    return queryset.filter(**{f"{field}__contains": values})
