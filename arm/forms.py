"""UI forms that write through a service, reporting every problem of a submit at once.

A form shapes what was typed into a service's keyword arguments (``ServiceForm.service_data``); the service
validates and writes. When the form itself rejects some fields, the service's model validation still runs
on the fields it could read (``submit``'s ``check``), so one submit shows the form's errors and the model's
together instead of the model's only once the form's are fixed.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError

from arm.errors import DomainError
from arm.ui import apply_service_errors


def same(value):
    return value


class ServiceForm:
    """Mixin: ``service_fields`` maps each form field to how its cleaned value becomes the service's
    argument of the same name (``same`` when it already is). ``service_data()`` leaves out the fields the
    form rejected, so it can be asked after a failed ``is_valid()``."""

    service_fields: dict[str, Callable] = {}

    def service_data(self) -> dict:
        cleaned = getattr(self, "cleaned_data", {})
        return {name: shape(cleaned[name]) for name, shape in self.service_fields.items() if name in cleaned}


def submit(
    form,
    save: Callable[[dict], object],
    check: Callable[[dict], None] | None = None,
    *,
    on_error: Callable = apply_service_errors,
):
    """Validate ``form`` and write through ``save(form.service_data())``: the saved object, or None with
    every error on the form (``on_error`` places a service's refusal, default next to the fields it names).
    When the form rejects fields, ``check(data)`` (the service's validation of the fields the form could
    read, writing nothing) adds the model's errors to the fields that have none yet."""
    if not form.is_valid():
        if check is not None:
            try:
                check(form.service_data())
            except (ValidationError, DomainError) as exc:
                on_error(form, exc)
        return None
    try:
        return save(form.service_data())
    except (ValidationError, DomainError) as exc:
        on_error(form, exc)
        return None
