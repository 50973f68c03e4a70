"""Filter building blocks shared by the apps' filtersets: what the OpenAPI schema documents for a query
parameter is what the filter accepts. An empty value (``?state=``) means "no filter", like every other
filter (the schema says ``allowEmptyValue``)."""

import re

import django_filters
from django import forms
from django_filters import fields


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
